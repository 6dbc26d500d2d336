# The Debian package, with CPack's DEB generator (docs/install.md):
#   scripts/package.sh            configure build-pkg/ for /usr, build, cpack
# CPack rather than a debian/ directory: the install rules above are the one
# description of what goes where (`cmake --install` and the package agree),
# the package comes from the same build tree in seconds, and it needs nothing
# beyond cmake and dpkg-dev (dpkg-shlibdeps computes the library Depends).

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME mosquitto-onboard)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(ONB_PACKAGE_MAINTAINER "mosquitto-onboard maintainers <maintainers@mosquitto-onboard.invalid>"
  CACHE STRING "the Maintainer field of the Debian package")
set(CPACK_PACKAGE_CONTACT ${ONB_PACKAGE_MAINTAINER})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
  "zero-touch device onboarding for Mosquitto: plugin, claim service, CLI")
# (CPack puts the summary first on its own)
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION "mosquitto_onboard.so authenticates devices by their TLS client certificate
against a Redis registry and checks every publish, subscribe and delivery
against the connection's policy. claimsvc provisions devices by claim in the
AWS IoT fleet-provisioning wire format; onboardctl manages devices, policies,
claim codes, the audit trail and the CRL.

Installs the plugin, both programs, systemd units (not enabled), example
configuration in /etc/mosquitto-onboard, the shipped policies and templates:
see /usr/share/doc/mosquitto-onboard/docs/install.md.")
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
# The libraries come from dpkg-shlibdeps; the broker is named here because the
# plugin is loaded by it (its mosquitto_* symbols come from the executable,
# which no library dependency can say), and its user runs the broker unit.
# adduser: postinst creates the claimsvc user.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "mosquitto (>= 2.0.11), adduser")
# The registry may live on another host; the clients are for checking a device by hand.
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "redis-server, mosquitto-clients")
# claimsvc's device CA key in an HSM (docs/provisioning.md).
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "libengine-pkcs11-openssl")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${ONB_STAGE}/conffiles
  ${PROJECT_SOURCE_DIR}/packaging/deb/postinst
  ${PROJECT_SOURCE_DIR}/packaging/deb/prerm
  ${PROJECT_SOURCE_DIR}/packaging/deb/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_STRIP_FILES ON)
# The files name paths fixed when this tree was configured (the units, the
# plugin line, onboardctl's policy directory): the package installs there.
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_ONB_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_ONB_MANPAGES ${ONB_MANPAGES})
# Every Debian package carries a changelog.Debian; this one points to the
# real history. Dated by the last commit, so that one commit gives one file.
set(ONB_DEB_VERSION ${PROJECT_VERSION}-${CPACK_DEBIAN_PACKAGE_RELEASE})
execute_process(COMMAND git -C ${PROJECT_SOURCE_DIR} log -1 --format=%cD
  OUTPUT_VARIABLE ONB_CHANGELOG_DATE OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
if(NOT ONB_CHANGELOG_DATE)
  string(TIMESTAMP ONB_CHANGELOG_DATE "%a, %d %b %Y %H:%M:%S +0000" UTC)
endif()
file(WRITE ${ONB_STAGE}/changelog.Debian.tmp "mosquitto-onboard (${ONB_DEB_VERSION}) bookworm; urgency=medium

  * Built from the mosquitto-onboard repository with CPack; its history is
    the repository's git log.

 -- ${ONB_PACKAGE_MAINTAINER}  ${ONB_CHANGELOG_DATE}
")
configure_file(${ONB_STAGE}/changelog.Debian.tmp ${ONB_STAGE}/changelog.Debian COPYONLY)
file(REMOVE ${ONB_STAGE}/changelog.Debian.tmp)
execute_process(COMMAND gzip -9n -c ${ONB_STAGE}/changelog.Debian
  OUTPUT_FILE ${ONB_STAGE}/changelog.Debian.gz COMMAND_ERROR_IS_FATAL ANY)
install(FILES ${ONB_STAGE}/changelog.Debian.gz DESTINATION ${CMAKE_INSTALL_DOCDIR})

set(CPACK_PROJECT_CONFIG_FILE ${PROJECT_SOURCE_DIR}/cmake/CPackChecks.cmake)
include(CPack)
