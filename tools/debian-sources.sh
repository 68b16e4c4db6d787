# debian-sources.sh - sourced by the tools that fetch from this machine's
# Debian package mirror with apt configurations of their own (the wolfSSL
# source package, the container base, the cross sysroots); never run.
#
# debian_deb_lines prints the Debian archives among the machine's apt
# sources as one-line "deb [opts] URI SUITE COMPONENTS" entries, from
# one-line .list files and deb822 .sources files alike (stanzas of type
# deb, not disabled). Other vendors' repositories are left out. A URI is a
# Debian archive when its path ends in /debian or /debian-security, or goes
# on below one (snapshot.debian.org's archive/debian/DATE).

DEBIAN_URI='[a-z]+://[^ ]*/debian(-security)?(/[^ ]*)?$'

debian_deb_lines() {
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] || continue
		awk -v re="$DEBIAN_URI" '
		$1 == "deb" {
			i = 2
			if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
			if ($i ~ re || ($i "/") ~ re) print
		}' "$f"
	done
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		awk -v re="$DEBIAN_URI" '
		BEGIN { RS = ""; FS = "\n" }
		{
			types = ""; uris = ""; suites = ""; comps = ""; off = 0
			for (i = 1; i <= NF; i++) {
				line = $i
				if (line ~ /^#/) continue
				k = tolower(line); sub(/:.*/, "", k)
				v = line; sub(/^[^:]*:[ \t]*/, "", v)
				if (k == "types") types = v
				else if (k == "uris") uris = v
				else if (k == "suites") suites = v
				else if (k == "components") comps = v
				else if (k == "enabled" && tolower(v) ~ /^no/) off = 1
			}
			if (off || types !~ /(^|[ \t])deb([ \t]|$)/) next
			nu = split(uris, u, /[ \t]+/); ns = split(suites, s, /[ \t]+/)
			for (a = 1; a <= nu; a++) {
				if (u[a] !~ re && (u[a] "/") !~ re) continue
				for (b = 1; b <= ns; b++) print "deb " u[a] " " s[b] " " comps
			}
		}' "$f"
	done
}
