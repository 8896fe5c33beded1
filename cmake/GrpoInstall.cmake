# Installs the library, its headers and a relocatable CMake package
# (find_package(grpo) -> grpo::grpo).
include(CMakePackageConfigHelpers)
set(GRPO_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/grpo)

install(TARGETS grpo EXPORT grpoTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS grpo_sentencepiece LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})  # opened beside libgrpo
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/grpo DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${PROJECT_BINARY_DIR}/include/grpo/config_build.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/grpo)
install(EXPORT grpoTargets NAMESPACE grpo:: DESTINATION ${GRPO_CMAKE_DIR})

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/grpoConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/grpoConfig.cmake
                              INSTALL_DESTINATION ${GRPO_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/grpoConfigVersion.cmake
                                 VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/grpoConfig.cmake ${PROJECT_BINARY_DIR}/grpoConfigVersion.cmake
        DESTINATION ${GRPO_CMAKE_DIR})
