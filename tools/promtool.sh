#!/bin/sh
# promtool.sh - prints the path of a promtool (Prometheus's rule checker)
# for the tests of conf/certbridge-alerts.yml.
#
# The promtool on PATH when there is one. Otherwise Debian's prometheus
# package is downloaded (not installed: installing it would also enable and
# start a Prometheus server on the machine) and unpacked once into
# ${PROMTOOL_CACHE:-/var/tmp/certbridge-promtool}/<version>/, which later
# runs reuse; a new package version unpacks into a new folder.
set -eu

if command -v promtool >/dev/null 2>&1; then
	command -v promtool
	exit 0
fi
cache=${PROMTOOL_CACHE:-/var/tmp/certbridge-promtool}
version=$(apt-cache policy prometheus 2>/dev/null | sed -n 's/^ *Candidate: //p')
if [ -z "$version" ] || [ "$version" = "(none)" ]; then
	echo "promtool.sh: no prometheus package known to apt (run apt-get update)" >&2
	exit 1
fi
dir=$cache/$(echo "$version" | tr -c 'A-Za-z0-9.\n' '_')
if [ ! -x "$dir/usr/bin/promtool" ]; then
	mkdir -p "$dir.tmp"
	(cd "$dir.tmp" && apt-get download -q "prometheus=$version" >/dev/null 2>&1) || {
		echo "promtool.sh: apt-get download prometheus=$version failed" >&2
		exit 1
	}
	dpkg-deb -x "$dir.tmp"/prometheus_*.deb "$dir.tmp/root"
	rm -rf "$dir"
	mv "$dir.tmp/root" "$dir"
	rm -rf "$dir.tmp"
fi
echo "$dir/usr/bin/promtool"
