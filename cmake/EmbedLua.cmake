# Turns lib/registry/lua/NAME.lua into `const char onb_lua_NAME[]` so that the scripts
# stay readable while the binaries need no files. Each script is preceded by
# the shared prelude (lib/registry/lua/prelude/*.lua, in name order: local helper
# functions only, so KEYS and ARGV keep the positions each script's header
# states). The whole text Redis runs is also written to LUA_OUT_DIR/NAME.lua,
# for redis-cli (`redis-cli --eval build/lib/registry/lua/NAME.lua KEYS , ARGV`, or
# `SCRIPT LOAD`): its SHA-1 is the one the binaries send with EVALSHA.
file(GLOB preludes "${SRC_DIR}/prelude/*.lua")
list(SORT preludes)
set(prelude "")
foreach(p ${preludes})
  file(READ "${p}" text)
  string(APPEND prelude "${text}\n")
endforeach()

file(WRITE "${OUT}" "/* generated from lib/registry/lua by cmake/EmbedLua.cmake: do not edit */\n")
file(GLOB scripts "${SRC_DIR}/*.lua")
list(SORT scripts)
foreach(script ${scripts})
  get_filename_component(name "${script}" NAME_WE)
  file(READ "${script}" own)
  set(body "${prelude}${own}")
  if(LUA_OUT_DIR)
    file(WRITE "${LUA_OUT_DIR}/${name}.lua" "${body}")
  endif()
  string(REPLACE "\\" "\\\\" body "${body}")
  string(REPLACE "\"" "\\\"" body "${body}")
  string(REPLACE "\n" "\\n\"\n\"" body "${body}")
  file(APPEND "${OUT}" "const char onb_lua_${name}[] =\n\"${body}\";\n")
endforeach()
