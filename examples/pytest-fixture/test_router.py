"""Example tests against the lab's real miniupnpd (router r1), run from LAN host lan1.
Replace upnpc / natpmpc with your own program."""


def test_upnp_external_address(lab):
    r = lab.exec("lan1", "upnpc", "-u", lab.rootdesc, "-s")
    assert r.returncode == 0, r.stderr
    assert f"ExternalIPAddress = {lab.r1_wan}" in r.stdout


def test_upnp_mapping_reaches_the_router(lab):
    r = lab.exec("lan1", "upnpc", "-u", lab.rootdesc, "-e", "pytest-example",
                 "-a", lab.lan1, "40081", "40081", "UDP")
    assert r.returncode == 0, r.stderr
    table = lab.run("upnp-table", "r1")
    assert f"UDP 40081 {lab.lan1} 40081" in table.stdout.splitlines()


def test_natpmp_public_address(lab):
    r = lab.exec("lan1", "natpmpc", "-g", lab.r1_lan)
    assert r.returncode == 0, r.stderr
    assert f"Public IP address : {lab.r1_wan}" in r.stdout
