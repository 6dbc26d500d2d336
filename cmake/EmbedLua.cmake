# Turns lib/lua/NAME.lua into `const char onb_lua_NAME[]` so that the scripts
# stay readable (and loadable by redis-cli) while the binaries need no files.
file(WRITE "${OUT}" "/* generated from lib/lua by cmake/EmbedLua.cmake: do not edit */\n")
file(GLOB scripts "${SRC_DIR}/*.lua")
list(SORT scripts)
foreach(script ${scripts})
  get_filename_component(name "${script}" NAME_WE)
  file(READ "${script}" body)
  string(REPLACE "\\" "\\\\" body "${body}")
  string(REPLACE "\"" "\\\"" body "${body}")
  string(REPLACE "\n" "\\n\"\n\"" body "${body}")
  file(APPEND "${OUT}" "const char onb_lua_${name}[] =\n\"${body}\";\n")
endforeach()
