# Sourced by scripts/test: the programs the deploy/ tests run (promtool, prometheus,
# alertmanager, from Debian's `prometheus` and `prometheus-alertmanager`) and the browser the
# eval report test opens its page in (Debian's `chromium`), installed when missing and this
# shell may (root with apt-get). Elsewhere those tests skip, or fail with CI=true
# (tests/deploy/tools.py, tests/evals/browser.py).
_dockyard_tools_missing() {
  command -v promtool >/dev/null 2>&1 || return 0
  command -v prometheus >/dev/null 2>&1 || return 0
  # Debian names the binary prometheus-alertmanager; upstream's tarball, alertmanager.
  command -v prometheus-alertmanager >/dev/null 2>&1 || command -v alertmanager >/dev/null 2>&1 ||
    return 0
  command -v chromium >/dev/null 2>&1 || return 0
  return 1
}
if _dockyard_tools_missing && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "scripts/test: installing prometheus, prometheus-alertmanager, chromium (apt-get)" >&2
  # The packages start their daemons (Prometheus on :9090) where services may start; the
  # tests run their own instances on free ports, so keep the system ones from starting,
  # through the policy file Debian's service scripts obey, unless one is already in place.
  _dockyard_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    _dockyard_policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' >"$_dockyard_policy"
    chmod +x "$_dockyard_policy"
  fi
  apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      prometheus prometheus-alertmanager chromium >/dev/null ||
    echo "scripts/test: could not install prometheus or chromium; their tests will skip" >&2
  if [ -n "$_dockyard_policy" ]; then rm -f "$_dockyard_policy"; fi
  unset _dockyard_policy
fi
unset -f _dockyard_tools_missing
