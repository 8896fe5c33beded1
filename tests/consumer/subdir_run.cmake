# Configures, builds and runs tests/consumer/subdir, which adds grpo's source
# tree with add_subdirectory (CUDA off and no build type, to build quickly).
# -D GRPO_SOURCE_DIR, WORK_DIR, CMAKE_GENERATOR, PREFIX_PATH ("|"-separated),
#    TOKENIZER_MODEL (a SentencePiece tokenizer.model the consumer encodes with)
include(${CMAKE_CURRENT_LIST_DIR}/run_step.cmake)

string(REPLACE "|" ";" PREFIX_PATH "${PREFIX_PATH}")
file(REMOVE_RECURSE ${WORK_DIR})
run_step("configure" ${CMAKE_COMMAND} -S ${GRPO_SOURCE_DIR}/tests/consumer/subdir -B ${WORK_DIR} -G ${CMAKE_GENERATOR}
         -DGRPO_SOURCE_DIR=${GRPO_SOURCE_DIR} -DGRPO_WITH_CUDA=OFF "-DCMAKE_PREFIX_PATH=${PREFIX_PATH}")
run_step("build" ${CMAKE_COMMAND} --build ${WORK_DIR} --parallel 2)
run_step("run" ${WORK_DIR}/consumer ${TOKENIZER_MODEL})
message(STATUS "${last_output}")
