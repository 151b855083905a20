#!/usr/bin/env bash
# Entry point of the Shoal images (coordinator and worker): applies the optional network
# emulation, then runs the given command as PID 1's only child.
#
#   NETEM="delay 5ms 1ms rate 100mbit loss 0.1%"   tc netem arguments for this container's
#                                                   egress (needs cap_add: NET_ADMIN)
#   NETEM_DEV=eth0                                  the interface to shape
#
# One-way delay between two containers is the sender's delay: give every service the same NETEM
# for a uniform network. Unset or empty NETEM leaves the link alone.
set -euo pipefail

if [ -n "${NETEM:-}" ]; then
    dev="${NETEM_DEV:-eth0}"
    command -v tc >/dev/null || { echo "entrypoint: NETEM is set but tc is missing (install iproute2)" >&2; exit 1; }
    # shellcheck disable=SC2086  # NETEM is a list of tc arguments
    if ! tc qdisc replace dev "$dev" root netem $NETEM; then
        echo "entrypoint: cannot apply NETEM='$NETEM' on $dev: the container needs cap_add: [NET_ADMIN]" \
            "and the host kernel sch_netem (modprobe sch_netem)" >&2
        exit 1
    fi
    echo "entrypoint: $dev shaped with netem $NETEM" >&2
fi

exec "$@"
