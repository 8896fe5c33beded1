# Installs the grpo build tree into a fresh prefix, then configures, builds and
# runs tests/consumer against it, as a user's project would.
# -D GRPO_BUILD_DIR, CONSUMER_SOURCE_DIR, WORK_DIR, CMAKE_GENERATOR, PREFIX_PATH ("|"-separated),
#    TOKENIZER_MODEL (a SentencePiece tokenizer.model the consumer encodes with)
include(${CMAKE_CURRENT_LIST_DIR}/run_step.cmake)

string(REPLACE "|" ";" PREFIX_PATH "${PREFIX_PATH}")
file(REMOVE_RECURSE ${WORK_DIR})
run_step("install" ${CMAKE_COMMAND} --install ${GRPO_BUILD_DIR} --prefix ${WORK_DIR}/prefix)
run_step("configure" ${CMAKE_COMMAND} -S ${CONSUMER_SOURCE_DIR} -B ${WORK_DIR}/build -G ${CMAKE_GENERATOR}
         -DCMAKE_BUILD_TYPE=Release "-DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix;${PREFIX_PATH}")
run_step("build" ${CMAKE_COMMAND} --build ${WORK_DIR}/build)
run_step("run" ${WORK_DIR}/build/consumer ${TOKENIZER_MODEL})
message(STATUS "${last_output}")
if(EXISTS ${WORK_DIR}/prefix/bin/grpo)  # the installed command line finds its library
  run_step("installed grpo" ${WORK_DIR}/prefix/bin/grpo config --set seed=7)
endif()
