/*
 * fuzz_config.c - libFuzzer target for the configuration loader.
 *
 * Writes the input as an INI file and loads it: whatever the bytes, the
 * loader must return a configuration or a list of problems, never crash,
 * leak or read out of bounds, and a failed load must say why.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include "config.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char path[64];
	struct cfg_diag diag = {0};
	struct cfg *cfg;
	FILE *f;

	if (path[0] == '\0') {
		snprintf(path, sizeof(path), "/tmp/cb-fuzz-config-%d.ini",
		    (int)getpid());
	}
	f = fopen(path, "wb");
	if (f == NULL) {
		return 0;
	}
	if (size > 0 && fwrite(data, 1, size, f) != size) {
		fclose(f);
		return 0;
	}
	fclose(f);
	cfg = cfg_load(path, &diag);
	unlink(path);
	CB_ASSERT(cfg != NULL || diag.errors > 0);
	for (size_t i = 0; i < diag.count; i++) {
		CB_ASSERT(diag.lines[i] != NULL);
	}
	cfg_free(cfg);
	cfg_diag_free(&diag);
	return 0;
}
