/*
 * filecheck.h - the files of a configuration as the running daemon will use
 * them, checked at every load (-t, start, reload; docs/configuration.md,
 * "Configuration that would weaken trust").
 *
 * config_values.c checks that -t itself can read what the file names. This
 * checks what only the daemon's future needs:
 *   - the folder of [gateway] state_file exists and takes new files, and an
 *     existing state file can be read (else the sightings are lost at the
 *     next stop, long after anyone looked);
 *   - with [gateway] user, that user can read every certificate, key, CA,
 *     CRL and device_certs file and the configuration file itself (the
 *     reload after the privilege drop reads them as that user), and the
 *     state file's folder is the user's to write.
 * Each problem is reported as "FILE:LINE: [section] key: ...", at the line
 * of the key that names the path.
 */
#ifndef CB_FILECHECK_H
#define CB_FILECHECK_H

#include <stdbool.h>

#include "config.h"

/* Adds every problem to diag; returns false when one is an error. */
bool filecheck_run(const struct cfg *cfg, struct cfg_diag *diag);

#endif
