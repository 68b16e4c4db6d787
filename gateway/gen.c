/*
 * gen.c - building and releasing configuration generations (see gen.h).
 */
#include <time.h>

#include "clock.h"
#include "devcheck.h"
#include "filecheck.h"
#include "gen.h"
#include "sni.h"
#include "tlsctx.h"
#include "trust.h"
#include "upcache.h"
#include "util.h"

struct gen *
gen_load(const char *path, uint64_t number, struct cfg_diag *diag)
{
	struct gen *g;
	bool files_ok, pairs_ok = true, p11_ok;

	g = calloc(1, sizeof(*g));
	if (g == NULL) {
		cfg_diag_add(diag, true, "%s: out of memory", path);
		return NULL;
	}
	g->refs = 1;
	g->number = number;
	g->loaded_at = clock_wall_s();
	g->cfg = cfg_load(path, diag);
	if (g->cfg == NULL) {
		free(g);
		return NULL;
	}
	/* Build both sides even when one fails, so -t lists every problem
	 * in one run. */
	g->p11 = p11_new(g->cfg, diag, &p11_ok);
	g->down_ctx = tlsctx_downstream_new(g->cfg, diag, g->p11);
	g->up_ctx = tlsctx_upstream_new(g->cfg, diag, g->p11);
	if (g->cfg->upstream.device_certs.path != NULL) {
		/* The pairs proven here are the ones its sessions use. */
		pairs_ok = devcheck_run(g->cfg, diag, &g->devstore);
	} else {
		/* Nothing to reuse at the next load: free the pairs of a
		 * folder no longer named (generations keep their own). */
		devcheck_forget();
	}
	g->sni = sni_new(g->cfg, g->down_ctx, diag);
	if (g->down_ctx != NULL) {
		g->trust = trust_new(g->cfg, g->down_ctx, diag);
	} else {
		/* Still check the CA files, on a scratch context. */
		WOLFSSL_CTX *scratch = wolfSSL_CTX_new(wolfSSLv23_server_method());

		if (scratch != NULL) {
			trust_free(trust_new(g->cfg, scratch, diag));
			wolfSSL_CTX_free(scratch);
		}
	}
	/* The state file's folder, and what [gateway] user can read: a
	 * reload after the privilege drop must not be the first to find
	 * out (docs/configuration.md, "Configuration that would weaken
	 * trust"). */
	files_ok = filecheck_run(g->cfg, diag);
	if (g->cfg->upstream.session_resumption) {
		g->upcache = upcache_new(UPCACHE_BUDGET);
		if (g->upcache == NULL) {
			cfg_diag_add(diag, true, "%s: out of memory", path);
		}
	}
	cfg_diag_sort(diag, path);
	if (!p11_ok || g->down_ctx == NULL || g->up_ctx == NULL
	    || g->trust == NULL
	    || g->sni == NULL
	    || !files_ok || !pairs_ok || (g->cfg->upstream.session_resumption
	    && g->upcache == NULL) || !certinv_build(g->cfg, &g->inv)) {
		gen_unref(g);
		return NULL;
	}
	return g;
}

struct gen *
gen_ref(struct gen *g)
{
	g->refs++;
	return g;
}

void
gen_unref(struct gen *g)
{
	if (g == NULL) {
		return;
	}
	CB_ASSERT(g->refs > 0);
	if (--g->refs > 0) {
		return;
	}
	/* Sessions free their WOLFSSL objects before releasing the
	 * generation, so no live connection still points at these. */
	if (g->down_ctx != NULL) {
		wolfSSL_CTX_free(g->down_ctx);
	}
	if (g->up_ctx != NULL) {
		wolfSSL_CTX_free(g->up_ctx);
	}
	p11_free(g->p11);
	trust_free(g->trust);
	sni_free(g->sni);
	devstore_unref(g->devstore);
	upcache_free(g->upcache);
	certinv_free(&g->inv);
	cfg_free(g->cfg);
	free(g);
}
