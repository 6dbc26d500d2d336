# Install rules for what is not a target: configuration, systemd units,
# policies, templates, man pages and documentation (docs/install.md says what
# goes where). The units and configuration files name installed paths
# (ExecStart=, `plugin ...`); they are written for prefix /usr, which the
# Debian package uses, and rewritten here for any other prefix.

# Where systemd looks for units: systemd.pc says /lib/systemd/system on
# Debian 12 (packages keep units out of /usr/lib there until the merged-/usr
# file moves are over). A prefix other than /usr gets PREFIX/lib/systemd/system,
# which systemd also reads for /usr/local.
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  pkg_get_variable(ONB_SYSTEMD_DEFAULT systemd systemdsystemunitdir)
  if(NOT ONB_SYSTEMD_DEFAULT)
    set(ONB_SYSTEMD_DEFAULT /lib/systemd/system)
  endif()
else()
  set(ONB_SYSTEMD_DEFAULT ${CMAKE_INSTALL_PREFIX}/lib/systemd/system)
endif()
set(ONB_SYSTEMD_UNIT_DIR ${ONB_SYSTEMD_DEFAULT} CACHE PATH "where the systemd units are installed")

set(ONB_PLUGIN_PATH ${CMAKE_INSTALL_PREFIX}/${ONB_PLUGIN_DIR}/mosquitto_onboard.so)
set(ONB_STAGE ${PROJECT_BINARY_DIR}/install)

# onb_render(SRC DST): SRC with the paths of a /usr install replaced by this
# build's, written to DST only when that changes it (no needless reinstall).
function(onb_render src dst)
  file(READ ${src} text)
  if(ARGN)
    list(GET ARGN 0 text_filter)
    cmake_language(CALL ${text_filter} text)
  endif()
  string(REPLACE "/usr/sbin/claimsvc" "${CMAKE_INSTALL_FULL_SBINDIR}/claimsvc" text "${text}")
  string(REPLACE "/usr/bin/onboardctl" "${CMAKE_INSTALL_FULL_BINDIR}/onboardctl" text "${text}")
  string(REPLACE "/etc/mosquitto-onboard" "${ONB_CONF_DIR}" text "${text}")
  file(WRITE ${dst}.tmp "${text}")
  configure_file(${dst}.tmp ${dst} COPYONLY)
  file(REMOVE ${dst}.tmp)
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${src})
endfunction()

# config/mosquitto.conf for this system: its @...@ placeholders filled with
# the installed paths, as the demo and the container image fill them for
# theirs. The listener takes every address (devices come from the network;
# mTLS is required), the log goes to stderr, which systemd hands to the journal.
function(onb_fill_mosquitto_conf var)
  set(text "${${var}}")
  # its leading comment speaks of the placeholders this file no longer has
  string(REGEX REPLACE "^(#[^\n]*\n)+" "" text "${text}")
  string(REGEX REPLACE "\nlistener @PORT@ 127\\.0\\.0\\.1\n" "\nlistener 8883\n" text "${text}")
  string(REGEX REPLACE "\nlog_dest file @LOG@\n" "\nlog_dest stderr\n" text "${text}")
  string(REPLACE "@PKI@" "/etc/mosquitto-onboard/pki" text "${text}")
  string(REPLACE "@PLUGIN@" "${ONB_PLUGIN_PATH}" text "${text}")
  string(REPLACE "@REDIS_URL@" "redis://127.0.0.1:6379/0" text "${text}")
  string(REGEX MATCH "\n[^#\n]*@[A-Z_]+@" left "${text}")
  if(left)
    message(FATAL_ERROR "config/mosquitto.conf: a placeholder the install does not fill:${left}")
  endif()
  set(${var} "# mosquitto-onboard: Mosquitto 2.0.11 to 2.1.x with the plugin, as installed
# (docs/install.md). Started by mosquitto-onboard.service; the files it names
# are listed in docs/systemd.md, \"Files and permissions\".\n\n${text}" PARENT_SCOPE)
endfunction()

set(ONB_CONFFILES "")
# onb_install_conf(SRC SUBDIR [FILTER]): a configuration file in ONB_CONF_DIR
# (SUBDIR "" for the top), also listed as a Debian conffile. Installed 0644:
# the package's postinst narrows those that may come to hold a password.
function(onb_install_conf src subdir)
  get_filename_component(name ${src} NAME)
  if(subdir)
    set(dest ${ONB_CONF_DIR}/${subdir})
  else()
    set(dest ${ONB_CONF_DIR})
  endif()
  set(out ${ONB_STAGE}/etc/${subdir}/${name})
  onb_render(${src} ${out} ${ARGN})
  install(FILES ${out} DESTINATION ${dest})
  set(ONB_CONFFILES "${ONB_CONFFILES}${dest}/${name}\n" PARENT_SCOPE)
endfunction()

onb_install_conf(${PROJECT_SOURCE_DIR}/config/mosquitto.conf "" onb_fill_mosquitto_conf)
onb_install_conf(${PROJECT_SOURCE_DIR}/config/claimsvc.conf "")
onb_install_conf(${PROJECT_SOURCE_DIR}/config/onboardctl.env "")
file(GLOB ONB_TEMPLATES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/config/templates/*.json)
foreach(t IN LISTS ONB_TEMPLATES)
  onb_install_conf(${t} templates)
endforeach()
file(WRITE ${ONB_STAGE}/conffiles.tmp "${ONB_CONFFILES}")
configure_file(${ONB_STAGE}/conffiles.tmp ${ONB_STAGE}/conffiles COPYONLY)
file(REMOVE ${ONB_STAGE}/conffiles.tmp)

file(GLOB ONB_UNITS CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/config/systemd/*.service
  ${PROJECT_SOURCE_DIR}/config/systemd/*.timer)
foreach(u IN LISTS ONB_UNITS)
  get_filename_component(name ${u} NAME)
  onb_render(${u} ${ONB_STAGE}/systemd/${name})
  install(FILES ${ONB_STAGE}/systemd/${name} DESTINATION ${ONB_SYSTEMD_UNIT_DIR})
endforeach()

install(DIRECTORY ${PROJECT_SOURCE_DIR}/policies/ DESTINATION ${ONB_DATA_DIR}/policies
  FILES_MATCHING PATTERN "*.json")
install(FILES ${PROJECT_SOURCE_DIR}/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/docs
  FILES_MATCHING PATTERN "*.md")
install(FILES ${PROJECT_SOURCE_DIR}/packaging/copyright DESTINATION ${CMAKE_INSTALL_DOCDIR})

# Man pages from the programs' own --help (packaging/man.sh, help2man), so
# that they cannot drift from it. Not in sanitizer or fuzzing builds: those
# binaries are not installed.
find_program(HELP2MAN help2man)
set(ONB_MANPAGES OFF)
if(HELP2MAN AND NOT ONB_SANITIZE AND NOT ONB_FUZZ)
  set(ONB_MANPAGES ON)
  set(ONB_MAN ${PROJECT_BINARY_DIR}/man)
  add_custom_command(OUTPUT ${ONB_MAN}/onboardctl.1.gz ${ONB_MAN}/claimsvc.8.gz
    COMMAND ${PROJECT_SOURCE_DIR}/packaging/man.sh ${HELP2MAN} ${PROJECT_VERSION} ${ONB_MAN}
            $<TARGET_FILE:onboardctl> $<TARGET_FILE:claimsvc>
    DEPENDS onboardctl claimsvc ${PROJECT_SOURCE_DIR}/packaging/man.sh
    COMMENT "Man pages from --help (help2man)")
  add_custom_target(manpages ALL DEPENDS ${ONB_MAN}/onboardctl.1.gz ${ONB_MAN}/claimsvc.8.gz)
  install(FILES ${ONB_MAN}/onboardctl.1.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
  install(FILES ${ONB_MAN}/claimsvc.8.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)
elseif(NOT HELP2MAN)
  message(STATUS "help2man not found: no man pages (scripts/deps.sh installs it)")
endif()
