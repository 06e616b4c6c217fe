# knit_module(NAME DEPS...) builds lib<NAME> from every .c file in the
# calling folder (recursively), except files under a `tools/` subfolder.
# A folder with no sources yet defines no library.
function(knit_module name)
  file(GLOB_RECURSE srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.c)
  list(FILTER srcs EXCLUDE REGEX "/tools/")
  if(NOT srcs)
    return()
  endif()
  add_library(${name} STATIC ${srcs})
  target_link_libraries(${name} PUBLIC knit_options ${ARGN})
endfunction()
