# Debian packages (CPack's DEB generator; scripts/package.sh builds them):
#   porthole          component "cli": the executable, man page, systemd unit,
#                     /etc/default/porthole, bash completion, the example config and
#                     porthole-lab with the lab under share/porthole/lab
#   libporthole-dev   component "dev": headers, libporthole.a, the CMake package
#                     config and porthole.pc
# Configure with CMAKE_INSTALL_PREFIX=/usr for packages (GNUInstallDirs then puts the
# library in the multiarch directory, lib/x86_64-linux-gnu).

# ---- porthole.pc
# What libporthole.a needs at link time, the one place to extend it: pkg-config
# modules in PORTHOLE_PC_REQUIRES, plain -l flags (no .pc file) in PORTHOLE_PC_LIBS.
# ngtcp2's crypto helper comes before ngtcp2, and both before GnuTLS, for static links.
set(PORTHOLE_PC_REQUIRES "libngtcp2_crypto_gnutls libngtcp2 miniupnpc gnutls nettle")
set(PORTHOLE_PC_LIBS "-lnatpmp -pthread")
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(PORTHOLE_PC_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
else()
  set(PORTHOLE_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
endif()
if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(PORTHOLE_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
else()
  set(PORTHOLE_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
configure_file(cmake/porthole.pc.in ${CMAKE_CURRENT_BINARY_DIR}/porthole.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/porthole.pc
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT dev)

# ---- porthole-lab: tests/lab/lab.sh (self-contained) and labkit.py (its Python
# helpers) under share/porthole/lab, and a wrapper in bin that runs it.
# The wrapper finds the lab relative to itself, so it works wherever the tree is
# installed (`cmake --install --prefix DIR` included).
file(RELATIVE_PATH PORTHOLE_LAB_RELATIVE_DIR ${CMAKE_INSTALL_FULL_BINDIR}
     ${CMAKE_INSTALL_FULL_DATADIR}/porthole/lab)
configure_file(dist/lab/porthole-lab.in ${CMAKE_CURRENT_BINARY_DIR}/porthole-lab @ONLY)
install(PROGRAMS ${CMAKE_CURRENT_BINARY_DIR}/porthole-lab
        DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT cli)
install(PROGRAMS tests/lab/lab.sh DESTINATION ${CMAKE_INSTALL_DATADIR}/porthole/lab
        COMPONENT cli)
install(FILES tests/lab/labkit.py tests/lab/README.md
        DESTINATION ${CMAKE_INSTALL_DATADIR}/porthole/lab COMPONENT cli)

# ---- man pages, gzipped with -9n (no name, no time stamp: the same bytes every build)
# when PORTHOLE_GZIP_MAN. The same gzip makes Debian's changelog.gz below.
find_program(GZIP_PROGRAM gzip REQUIRED)
function(porthole_gzip src out)
  add_custom_command(OUTPUT ${out} COMMAND ${GZIP_PROGRAM} -9n -c ${src} > ${out}
                     DEPENDS ${src} VERBATIM)
endfunction()
set(porthole_gzipped)
file(MAKE_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/man)
foreach(page porthole.1 porthole-lab.1)
  if(PORTHOLE_GZIP_MAN)
    porthole_gzip(${CMAKE_CURRENT_SOURCE_DIR}/man/${page} ${CMAKE_CURRENT_BINARY_DIR}/man/${page}.gz)
    list(APPEND porthole_gzipped ${CMAKE_CURRENT_BINARY_DIR}/man/${page}.gz)
    install(FILES ${CMAKE_CURRENT_BINARY_DIR}/man/${page}.gz
            DESTINATION ${CMAKE_INSTALL_MANDIR}/man1 COMPONENT cli)
  else()
    install(FILES man/${page} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1 COMPONENT cli)
  endif()
endforeach()

# ---- configuration: /etc/default/porthole (the systemd units' EnvironmentFile) and
# the commented-out example config, both conffiles. In /etc for the packages (prefix
# /usr); under PREFIX/etc otherwise, so `cmake --install --prefix DIR` writes nothing
# outside DIR.
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(porthole_sysconfdir /etc)
else()
  set(porthole_sysconfdir ${CMAKE_INSTALL_SYSCONFDIR})
endif()
install(FILES dist/default/porthole DESTINATION ${porthole_sysconfdir}/default COMPONENT cli)
install(FILES dist/porthole.conf DESTINATION ${porthole_sysconfdir}/porthole COMPONENT cli)
set(porthole_conffiles /etc/default/porthole /etc/porthole/porthole.conf)
install(FILES dist/bash-completion/porthole dist/bash-completion/porthole-lab
        DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions COMPONENT cli)

# ---- Debian's documentation files: copyright, and the Debian changelog (a native
# package's changelog.gz; the changes themselves are in CHANGELOG.md) gzipped.
install(FILES dist/doc/copyright DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/porthole
        COMPONENT cli)
install(FILES dist/doc/copyright DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/libporthole-dev
        COMPONENT dev)
configure_file(dist/debian/changelog.in ${CMAKE_CURRENT_BINARY_DIR}/debian-changelog @ONLY)
porthole_gzip(${CMAKE_CURRENT_BINARY_DIR}/debian-changelog ${CMAKE_CURRENT_BINARY_DIR}/changelog.gz)
add_custom_target(porthole_gzipped ALL
                  DEPENDS ${porthole_gzipped} ${CMAKE_CURRENT_BINARY_DIR}/changelog.gz)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/changelog.gz
        DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/porthole COMPONENT cli)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/changelog.gz
        DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/libporthole-dev COMPONENT dev)

# ---- CPack
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME porthole)
set(CPACK_PACKAGE_VENDOR "the porthole authors")
set(CPACK_PACKAGE_CONTACT "porthole dev <dev@porthole.invalid>")
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_STRIP_FILES ON)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL cli dev)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

set(CPACK_DEBIAN_CLI_PACKAGE_NAME porthole)
set(CPACK_DEBIAN_CLI_PACKAGE_SECTION net)
# The executable's shared libraries from dpkg-shlibdeps. scripts/package.sh builds
# with PORTHOLE_STATIC_CLI=OFF: Debian wants no copies of miniupnpc, GnuTLS, gmp ...
# inside a binary (lintian: embedded-library), so their security updates reach it. porthole-lab runs the lab, whose programs are
# plain run-time dependencies: ip (iproute2), nft (nftables), conntrack, miniupnpd
# with its nftables backend, stund (stun-server), sysctl (procps); python3 for
# labkit.py, the lab's Python helpers.
# They are Recommends, not Depends: porthole itself (open, hold, serve, punch) needs
# none of them, and miniupnpd's own postinst asks debconf questions and may start a
# daemon in the root namespace, which no one installing a port-mapping client wants
# forced on them. miniupnpc and natpmpc are what a user's lab tests typically run.
# coturn only for `porthole-lab turn-start` (the lab's TURN relay): a server a user of
# the lab rarely wants, so Suggests.
set(CPACK_DEBIAN_CLI_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_CLI_PACKAGE_SUGGESTS "coturn")
set(CPACK_DEBIAN_CLI_PACKAGE_RECOMMENDS
    "iproute2, nftables, conntrack, miniupnpd, miniupnpd-nftables, stun-server, procps, python3, miniupnpc, natpmpc")
set(CPACK_DEBIAN_CLI_DESCRIPTION
"open ports on a home router over PCP, NAT-PMP and UPnP IGD
porthole installs port-forwarding rules over PCP (RFC 6887), NAT-PMP
(RFC 6886) and UPnP IGD, proves them from outside with STUN, keeps them
alive (porthole hold, with a systemd unit), runs its own public-side STUN
and rendezvous server (porthole serve), and punches direct UDP paths
between peers (porthole punch).

porthole-lab runs a network lab of real miniupnpd routers in network
namespaces, for testing one's own port-mapping client.")
string(JOIN "\n" PORTHOLE_CONFFILES_LINES ${porthole_conffiles})
configure_file(dist/debian/conffiles.in ${CMAKE_CURRENT_BINARY_DIR}/debian-cli/conffiles)
set(CPACK_DEBIAN_CLI_PACKAGE_CONTROL_EXTRA ${CMAKE_CURRENT_BINARY_DIR}/debian-cli/conffiles)

set(CPACK_DEBIAN_DEV_PACKAGE_NAME libporthole-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
# libporthole.a's link dependencies, which portholeConfig.cmake and porthole.pc name
# (the shared libraries; with PORTHOLE_STATIC_CLI the exported target names the
# archives of GnuTLS's own dependencies as well), and the packages of the CMake configs
# portholeConfig.cmake finds (fmt, nlohmann_json). The headers need only the C++
# standard library.
set(porthole_dev_depends libminiupnpc-dev libnatpmp-dev libgnutls28-dev nettle-dev libfmt-dev
    nlohmann-json3-dev libngtcp2-dev libngtcp2-crypto-gnutls-dev)
if(PORTHOLE_STATIC_CLI)
  list(APPEND porthole_dev_depends libunistring-dev libidn2-dev libtasn1-6-dev libgmp-dev
       libp11-kit-dev)
endif()
string(JOIN ", " CPACK_DEBIAN_DEV_PACKAGE_DEPENDS ${porthole_dev_depends})
set(CPACK_DEBIAN_DEV_DESCRIPTION
"porthole library: port mapping, STUN and hole punching for C++20
The static library libporthole with its headers (include/porthole), a CMake
package (find_package(porthole), target porthole::porthole) and a pkg-config
file (porthole.pc): PCP, NAT-PMP and UPnP IGD port mapping, STUN NAT
discovery and verification, and ICE-style UDP hole punching.")
include(CPack)
