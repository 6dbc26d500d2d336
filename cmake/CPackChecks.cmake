# Read by cpack before it packs (CPACK_PROJECT_CONFIG_FILE): refuse a Debian
# package that would install somewhere its own files do not point to, or
# without its man pages.
if(CPACK_GENERATOR STREQUAL "DEB")
  if(NOT CPACK_ONB_PREFIX STREQUAL "/usr")
    message(FATAL_ERROR "the Debian package needs a tree configured with "
      "-DCMAKE_INSTALL_PREFIX=/usr (this one: ${CPACK_ONB_PREFIX}); scripts/package.sh does that")
  endif()
  if(NOT CPACK_ONB_MANPAGES)
    message(FATAL_ERROR "the Debian package needs its man pages: install help2man "
      "(scripts/deps.sh) and configure again")
  endif()
endif()
