# sealgate_library(): one static library per folder, and the layering of the
# folders enforced by the compiler rather than by review.
#
# A library does not see the source tree's root. Its include directory is a
# folder of its own in the build tree (include/<target>/) holding a link to
# its source folder only, so "gateway/spool/spool.hpp" resolves for code that
# links sealgate_spool (its own files, and whoever names it in DEPENDS) and
# for nobody else: an include against the layering is "No such file or
# directory" at compile time. tests/layering/ proves it (ctest -R layering).
#
#   sealgate_library(sealgate_spool FOLDER gateway/spool
#                    SOURCES spool.cpp ...
#                    DEPENDS sealgate_mail sealgate_config ...   # PUBLIC: its headers may use theirs
#                    PRIVATE_DEPENDS SQLite::SQLite3 ...)        # only its .cpp files
function(sealgate_library target)
  cmake_parse_arguments(arg "" "FOLDER" "SOURCES;DEPENDS;PRIVATE_DEPENDS" ${ARGN})
  list(TRANSFORM arg_SOURCES PREPEND ${PROJECT_SOURCE_DIR}/${arg_FOLDER}/)  # SOURCES are named inside FOLDER
  add_library(${target} STATIC ${arg_SOURCES})
  set(root ${PROJECT_BINARY_DIR}/include/${target})
  get_filename_component(parent ${root}/${arg_FOLDER} DIRECTORY)
  file(MAKE_DIRECTORY ${parent})
  if(NOT EXISTS ${root}/${arg_FOLDER})
    file(CREATE_LINK ${PROJECT_SOURCE_DIR}/${arg_FOLDER} ${root}/${arg_FOLDER} SYMBOLIC)
  endif()
  target_include_directories(${target} PUBLIC ${root})
  target_link_libraries(${target} PUBLIC ${arg_DEPENDS} PRIVATE ${arg_PRIVATE_DEPENDS})
  set_property(GLOBAL APPEND PROPERTY SEALGATE_LIBRARIES ${target})
endfunction()
