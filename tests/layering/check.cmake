# build.layering: proves that a layer cannot include a higher layer's header.
#
# For every pair of layers (codec -> net -> proto -> state -> core -> tunnel) it compiles a
# one-line file `#include "<other>/<header>"` with the include path the build gives
# layer <layer>'s sources (passed in as INCLUDES_<layer>, '|'-separated): a lower or
# the same layer's header must compile, a higher layer's must fail with "not found".
#   cmake -DCXX=... -DLAYERS="codec|net|..." -DINCLUDES_codec=... -DWORK=dir -P check.cmake
cmake_minimum_required(VERSION 3.20)
string(REPLACE "|" ";" layers "${LAYERS}")
# One header of each layer, whose own includes are all inside lower layers.
set(header_codec codec/pcp_codec.hpp)
set(header_net net/deadline.hpp)
set(header_proto proto/port_mapper.hpp)
set(header_state state/state_store.hpp)
set(header_core core/session.hpp)
set(header_tunnel tunnel/quic_connection.hpp)

file(MAKE_DIRECTORY ${WORK})
set(failures 0)
set(index 0)
foreach(layer IN LISTS layers)
  string(REPLACE "|" ";" includes "${INCLUDES_${layer}}")
  set(flags)
  foreach(dir IN LISTS includes)
    list(APPEND flags -I${dir})
  endforeach()
  set(other_index 0)
  foreach(other IN LISTS layers)
    set(source ${WORK}/${layer}_includes_${other}.cpp)
    file(WRITE ${source} "#include \"${header_${other}}\"\n")
    execute_process(COMMAND ${CXX} -std=c++20 -fsyntax-only ${flags} ${source}
                    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
    if(other_index GREATER index)
      if(rc EQUAL 0)
        message(SEVERE_ERROR "${layer} can include ${header_${other}}: layering not enforced")
        math(EXPR failures "${failures} + 1")
      elseif(NOT out MATCHES "No such file or directory|file not found")
        message(SEVERE_ERROR "${layer} including ${header_${other}} failed for another "
                             "reason than a missing header:\n${out}")
        math(EXPR failures "${failures} + 1")
      else()
        message(STATUS "ok: ${layer} cannot include ${header_${other}}")
      endif()
    elseif(NOT rc EQUAL 0)
      message(SEVERE_ERROR "${layer} cannot include ${header_${other}}, a layer it may "
                           "use:\n${out}")
      math(EXPR failures "${failures} + 1")
    else()
      message(STATUS "ok: ${layer} includes ${header_${other}}")
    endif()
    math(EXPR other_index "${other_index} + 1")
  endforeach()
  math(EXPR index "${index} + 1")
endforeach()
if(failures GREATER 0)
  message(FATAL_ERROR "${failures} layering check(s) failed")
endif()
