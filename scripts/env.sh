# Sourced by the scripts. Puts the Swift toolchain on PATH when it is in /opt/swift, and gives
# every run its own Nix configuration, so that nothing depends on the host's /etc/nix or
# ~/.config/nix: sandboxed builds with the nixbld users and /bin/sh visible inside the sandbox
# (a `/bin/sh` builder needs it), and no substituters (nothing waits on an unreachable
# cache.nixos.org). Tests and builders that need other settings set their own NIX_CONF_DIR.
if ! command -v swift >/dev/null 2>&1 && [ -x /opt/swift/usr/bin/swift ]; then
  export PATH="/opt/swift/usr/bin:$PATH"
fi
NIX_BRIDGE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export NIX_CONF_DIR="$NIX_BRIDGE_ROOT/.build/nix-conf"
mkdir -p "$NIX_CONF_DIR"
cat > "$NIX_CONF_DIR/nix.conf" <<'NIXCONF'
# Written by scripts/env.sh for the main job and the tests.
build-users-group = nixbld
sandbox = true
sandbox-paths = /bin /usr /lib /lib64
substituters =
NIXCONF
# Nix reads these instead of ~/.config/nix/nix.conf when set.
export NIX_USER_CONF_FILES="$NIX_CONF_DIR/nix.conf"
# `phase NAME` prints the seconds since NIX_BRIDGE_PHASE_START (set by scripts/fresh-root;
# else since this script began), so that a log shows how long each phase took.
: "${NIX_BRIDGE_PHASE_START:=$(date +%s)}"
export NIX_BRIDGE_PHASE_START
phase() { echo "== phase: $* done at $(( $(date +%s) - NIX_BRIDGE_PHASE_START )) s"; }
