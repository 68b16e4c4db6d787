#!/bin/sh
# tests/conf/run.sh BINARY - the `certbridge -t` fixtures.
#
#   good/NAME.ini   must exit 0. If good/NAME.expected exists (warnings), the
#                   standard error must equal it exactly.
#   bad/NAME.ini    must exit 1 with a standard error equal to
#                   bad/NAME.expected, line for line.
#
# -t loads every certificate the fixtures name, so the fixtures run in a
# copy of tests/conf inside a temporary folder, next to real certificates
# generated for this run (tools/mkpki.py) under files/. The run happens from
# that folder with repository-relative names, so the file names in the
# messages ("tests/conf/bad/NAME.ini:3: ...") are the same as in the tree.
#
# To write a new bad fixture: create bad/NAME.ini, run
#   BINARY -t -c tests/conf/bad/NAME.ini 2> tests/conf/bad/NAME.expected
# from the repository root, and read every line before committing it.
set -u

if [ $# -ne 1 ]; then
	echo "usage: $0 BINARY" >&2
	exit 2
fi
case $1 in
/*) bin=$1 ;;
*) bin=$(pwd)/$1 ;;
esac
if [ ! -x "$bin" ]; then
	echo "$0: $bin is not an executable" >&2
	exit 2
fi

root=$(cd "$(dirname "$0")/../.." && pwd) || exit 2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cb-conf.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT HUP INT TERM

# The certificates the fixtures name, valid for long enough that no
# expiry warning appears: device CAs 2019 and 2026 (with a CRL), the
# gateway's device-facing chain, the broker's root, an upstream identity.
mkdir -p "$tmp/tree/tests" && cp -R "$root/tests/conf" "$tmp/tree/tests/" || exit 2
files=$tmp/tree/tests/conf/files
pki() { /usr/bin/python3 "$root/tools/mkpki.py" "$@" >/dev/null || exit 2; }
pki ca --out "$files" --name ca-2019 --cn "Fixture Device CA 2019"
pki ca --out "$files" --name ca-2026 --cn "Fixture Device CA 2026"
pki ca --out "$files" --name broker-ca --cn "Fixture Cloud Root"
pki ca --out "$files" --name upstream-ca --cn "Fixture Cloud Client CA"
pki leaf --out "$files" --name gateway --cn localhost --dns localhost \
	--issuer "$files/ca-2019" --usage server --chain
pki leaf --out "$files" --name upstream --cn certbridge-gateway \
	--issuer "$files/upstream-ca" --usage client
pki crl --out "$files/ca-2019.crl" --issuer "$files/ca-2019"
cd "$tmp/tree" || exit 2

run_t() {
	# A hung binary fails the fixture instead of the whole run.
	timeout 20 "$bin" -t -c "$1" >"$tmp/out" 2>"$tmp/err"
}

good=0
bad=0
failed=0

fail() {
	failed=$((failed + 1))
	echo "FAIL $1: $2"
}

for f in tests/conf/good/*.ini; do
	[ -e "$f" ] || continue
	good=$((good + 1))
	run_t "$f"
	rc=$?
	if [ "$rc" -ne 0 ]; then
		fail "$f" "exit $rc, expected 0"
		sed 's/^/    /' "$tmp/err"
		continue
	fi
	exp=${f%.ini}.expected
	if [ -e "$exp" ] && ! diff -u "$exp" "$tmp/err" >"$tmp/diff"; then
		fail "$f" "standard error differs from $exp"
		sed 's/^/    /' "$tmp/diff"
	fi
	# The verdict line on standard output (docs/install.md, "The command
	# line"): what was checked, in words, with as many warnings as
	# standard error has lines.
	warns=$(wc -l <"$tmp/err")
	if [ "$warns" -eq 1 ]; then w="1 warning"; else w="$warns warnings"; fi
	if [ "$warns" -eq 0 ]; then ok="OK"; else ok="OK with warnings"; fi
	if ! tail -n 1 "$tmp/out" | grep -Eq "^$f: configuration $ok: [0-9]+ certificates?, [0-9]+ CAs?( \(nearest expiry [0-9]{4}-[0-9]{2}-[0-9]{2}\))?, 0 errors, $w(; and [0-9]+ in root bundles \(dates not judged\))?\$"; then
		fail "$f" "no summary line with 0 errors, $w on standard output"
		sed 's/^/    /' "$tmp/out"
	fi
done

for f in tests/conf/bad/*.ini; do
	[ -e "$f" ] || continue
	bad=$((bad + 1))
	exp=${f%.ini}.expected
	if [ ! -e "$exp" ]; then
		fail "$f" "no $exp"
		continue
	fi
	run_t "$f"
	rc=$?
	if [ "$rc" -ne 1 ]; then
		fail "$f" "exit $rc, expected 1"
	fi
	if ! diff -u "$exp" "$tmp/err" >"$tmp/diff"; then
		fail "$f" "standard error differs from $exp"
		sed 's/^/    /' "$tmp/diff"
	fi
	if ! tail -n 1 "$tmp/out" | grep -Eq "^$f: configuration NOT valid: ([0-9]+ certificates?, [0-9]+ CAs?( \(nearest expiry [0-9]{4}-[0-9]{2}-[0-9]{2}\))?, )?[1-9][0-9]* errors?, [0-9]+ warnings?; certbridge would not start with it \(exit 1\)\$"; then
		fail "$f" "no NOT valid summary line on standard output"
		sed 's/^/    /' "$tmp/out"
	fi
done

# An .expected without its .ini is a fixture that silently stopped running.
for exp in tests/conf/good/*.expected tests/conf/bad/*.expected; do
	[ -e "$exp" ] || continue
	if [ ! -e "${exp%.expected}.ini" ]; then
		fail "$exp" "no matching .ini"
	fi
done

if [ "$failed" -eq 0 ]; then
	echo "conf fixtures: $good good, $bad bad: all passed"
	exit 0
fi
echo "conf fixtures: $good good, $bad bad: $failed FAILED"
exit 1
