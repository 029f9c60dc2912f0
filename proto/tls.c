// SPDX-License-Identifier: MIT
//
// Certificates and identity: loads a node's CA, certificate and key once,
// hands nng the TLS configurations its listeners and dialers use, and
// signs and verifies the hello that binds a connection to the node id and
// role its certificate names (nng 1.5.2 tells whether a peer was verified,
// not who it is). mbedTLS does the cryptography: nng already links it.

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "proto_int.h"

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/sha256.h>
#include <mbedtls/x509_crt.h>
#include <nng/supplemental/tls/tls.h>

#include <pthread.h>

struct proto_tls {
	mbedtls_x509_crt ca; // the cluster CA (trust anchor)
	mbedtls_pk_context key; // our private key
	char *cert_pem; // our certificate, NUL-terminated PEM
	size_t cert_len; // without the NUL
	uint32_t node; // from our certificate's subject
	proto_role role;
	nng_tls_config *srv, *cli; // nng's configurations, one per side
	pthread_mutex_t mu; // guards drbg (mbedTLS's is not thread-safe)
	mbedtls_entropy_context ent;
	mbedtls_ctr_drbg_context drbg;
};

static const char *const role_names[PROTO_ROLE_COUNT] = {
	[PROTO_ROLE_NONE] = "none",
	[PROTO_ROLE_COORDINATOR] = "coordinator",
	[PROTO_ROLE_PARTICIPANT] = "participant",
	[PROTO_ROLE_SAGA] = "saga",
	[PROTO_ROLE_CLIENT] = "client",
	[PROTO_ROLE_ADMIN] = "admin",
	[PROTO_ROLE_HARNESS] = "harness",
};

const char *
proto_role_name(proto_role r)
{
	return (unsigned)r < PROTO_ROLE_COUNT ? role_names[r] : "?";
}

dtx_err
proto_role_parse(const char *s, size_t n, proto_role *out)
{
	for (int r = PROTO_ROLE_NONE + 1; r < PROTO_ROLE_COUNT; r++)
		if (strlen(role_names[r]) == n &&
		    memcmp(role_names[r], s, n) == 0) {
			*out = (proto_role)r;
			return DTX_OK;
		}
	return DTX_EINVAL;
}

// A decimal node id of 1..9 digits, the whole of s[0..n).
static bool
parse_id(const char *s, size_t n, uint32_t *out)
{
	uint64_t v = 0;
	if (n == 0 || n > 9)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = (uint32_t)v;
	return true;
}

dtx_err
proto_subject_identity(
    const char *cn, const char *ou, uint32_t *node, proto_role *role)
{
	proto_role r = PROTO_ROLE_NONE, our = PROTO_ROLE_NONE;
	uint32_t id = 0;
	if (cn == NULL)
		return DTX_EINVAL;
	if (ou != NULL && proto_role_parse(ou, strlen(ou), &our) != DTX_OK)
		return DTX_EINVAL;
	const char *dash = strrchr(cn, '-');
	if (dash != NULL) {
		// CN=<role>-<id>; an OU, if any, must name the same role.
		if (proto_role_parse(cn, (size_t)(dash - cn), &r) != DTX_OK ||
		    !parse_id(dash + 1, strlen(dash + 1), &id) ||
		    (our != PROTO_ROLE_NONE && our != r))
			return DTX_EINVAL;
	} else {
		// CN=<id>, OU=<role>.
		if (our == PROTO_ROLE_NONE || !parse_id(cn, strlen(cn), &id))
			return DTX_EINVAL;
		r = our;
	}
	*node = id;
	*role = r;
	return DTX_OK;
}

// Copies the subject attribute oid of crt into out (NUL-terminated);
// false when absent or too long.
static bool
subject_attr(const mbedtls_x509_crt *crt, const char *oid, size_t oid_len,
    char *out, size_t n)
{
	for (const mbedtls_x509_name *a = &crt->subject; a != NULL;
	     a = a->next) {
		if (a->oid.p == NULL || a->oid.len != oid_len ||
		    memcmp(a->oid.p, oid, oid_len) != 0)
			continue;
		if (a->val.len + 1 > n || memchr(a->val.p, 0, a->val.len))
			return false;
		memcpy(out, a->val.p, a->val.len);
		out[a->val.len] = '\0';
		return true;
	}
	return false;
}

// The node id and role a certificate's subject names.
static dtx_err
crt_identity(const mbedtls_x509_crt *crt, uint32_t *node, proto_role *role)
{
	char cn[128], ou[64];
	if (!subject_attr(crt, MBEDTLS_OID_AT_CN,
	        MBEDTLS_OID_SIZE(MBEDTLS_OID_AT_CN), cn, sizeof(cn)))
		return DTX_EINVAL;
	bool has_ou = subject_attr(crt, MBEDTLS_OID_AT_ORG_UNIT,
	    MBEDTLS_OID_SIZE(MBEDTLS_OID_AT_ORG_UNIT), ou, sizeof(ou));
	return proto_subject_identity(cn, has_ou ? ou : NULL, node, role);
}

// Reads a whole file into an owned NUL-terminated buffer.
static dtx_err
read_pem(const char *path, char **out, size_t *len, char *why, size_t why_len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0, n = 0;
	if (f == NULL) {
		snprintf(why, why_len, "cannot open %s", path);
		return DTX_EINVAL;
	}
	for (;;) {
		if (n + 4096 + 1 > cap) {
			if (cap >= (1u << 20))
				break; // no certificate file is this large
			cap = cap ? cap * 2 : 8192;
			char *nb = dtx_realloc(buf, cap);
			if (nb == NULL) {
				fclose(f);
				dtx_free(buf);
				return DTX_ENOMEM;
			}
			buf = nb;
		}
		size_t r = fread(buf + n, 1, cap - n - 1, f);
		n += r;
		if (r == 0)
			break;
	}
	bool bad = ferror(f) || n == 0 || (n + 1 >= cap && !feof(f));
	fclose(f);
	if (bad) {
		dtx_free(buf);
		snprintf(
		    why, why_len, "cannot read %s (empty or too large)", path);
		return DTX_EINVAL;
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return DTX_OK;
}

static dtx_err
nng_cfg(proto_tls *t, nng_tls_mode mode, const char *ca, const char *key,
    nng_tls_config **out)
{
	nng_tls_config *c;
	int rv = nng_tls_config_alloc(&c, mode);
	if (rv != 0)
		return proto_from_nng(rv);
	if ((rv = nng_tls_config_auth_mode(c, NNG_TLS_AUTH_MODE_REQUIRED)) !=
	        0 ||
	    (rv = nng_tls_config_ca_chain(c, ca, NULL)) != 0 ||
	    (rv = nng_tls_config_own_cert(c, t->cert_pem, key, NULL)) != 0) {
		nng_tls_config_free(c);
		return DTX_EINVAL;
	}
	*out = c;
	return DTX_OK;
}

// Parses the CA and our certificate and key, and checks that they belong
// together: the key is the certificate's, the CA signed it, and its
// subject names a node.
static dtx_err
load_keys(proto_tls *t, const char *ca_pem, size_t ca_len, const char *key_pem,
    size_t key_len, char *why, size_t why_len)
{
	mbedtls_x509_crt own;
	uint32_t flags = 0;
	dtx_err rv = DTX_EINVAL;

	mbedtls_x509_crt_init(&own);
	if (mbedtls_x509_crt_parse(
	        &t->ca, (const unsigned char *)ca_pem, ca_len + 1) != 0) {
		snprintf(why, why_len, "the CA file holds no certificate");
		goto done;
	}
	if (mbedtls_x509_crt_parse(&own, (const unsigned char *)t->cert_pem,
	        t->cert_len + 1) != 0) {
		snprintf(why, why_len, "the certificate file is not PEM");
		goto done;
	}
	if (mbedtls_pk_parse_key(&t->key, (const unsigned char *)key_pem,
	        key_len + 1, NULL, 0) != 0) {
		snprintf(why, why_len,
		    "the key file holds no (unencrypted) private key");
		goto done;
	}
	if (mbedtls_pk_check_pair(&own.pk, &t->key) != 0) {
		snprintf(
		    why, why_len, "the key does not match the certificate");
		goto done;
	}
	if (mbedtls_x509_crt_verify(
	        &own, &t->ca, NULL, NULL, &flags, NULL, NULL) != 0) {
		snprintf(why, why_len,
		    "the certificate is not signed by the CA (or expired): "
		    "flags 0x%x",
		    flags);
		goto done;
	}
	if (crt_identity(&own, &t->node, &t->role) != DTX_OK) {
		snprintf(why, why_len,
		    "the certificate's subject names no node (CN=<role>-<id>, "
		    "or CN=<id> with OU=<role>)");
		goto done;
	}
	rv = DTX_OK;
done:
	mbedtls_x509_crt_free(&own);
	return rv;
}

dtx_err
proto_tls_open(const char *ca_file, const char *cert_file, const char *key_file,
    char *why, size_t why_len, proto_tls **out)
{
	char *ca = NULL, *key = NULL;
	size_t ca_len = 0, key_len = 0;
	dtx_err rv;

	if (ca_file == NULL || cert_file == NULL || key_file == NULL) {
		snprintf(why, why_len,
		    "--tls-ca, --tls-cert and --tls-key go together");
		return DTX_EINVAL;
	}
	proto_tls *t = dtx_calloc(1, sizeof(*t));
	if (t == NULL)
		return DTX_ENOMEM;
	mbedtls_x509_crt_init(&t->ca);
	mbedtls_pk_init(&t->key);
	mbedtls_entropy_init(&t->ent);
	mbedtls_ctr_drbg_init(&t->drbg);
	pthread_mutex_init(&t->mu, NULL);
	if ((rv = read_pem(ca_file, &ca, &ca_len, why, why_len)) != DTX_OK ||
	    (rv = read_pem(cert_file, &t->cert_pem, &t->cert_len, why,
	         why_len)) != DTX_OK ||
	    (rv = read_pem(key_file, &key, &key_len, why, why_len)) != DTX_OK)
		goto fail;
	if ((rv = load_keys(t, ca, ca_len, key, key_len, why, why_len)) !=
	    DTX_OK)
		goto fail;
	if (mbedtls_ctr_drbg_seed(&t->drbg, mbedtls_entropy_func, &t->ent,
	        (const unsigned char *)"dtx-hello", 9) != 0) {
		snprintf(why, why_len, "cannot seed the random generator");
		rv = DTX_EIO;
		goto fail;
	}
	if ((rv = nng_cfg(t, NNG_TLS_MODE_SERVER, ca, key, &t->srv)) !=
	        DTX_OK ||
	    (rv = nng_cfg(t, NNG_TLS_MODE_CLIENT, ca, key, &t->cli)) !=
	        DTX_OK) {
		snprintf(why, why_len, "nng refuses the certificate or key");
		goto fail;
	}
	dtx_free(ca);
	dtx_free(key);
	*out = t;
	return DTX_OK;
fail:
	dtx_free(ca);
	if (key != NULL)
		memset(key, 0, key_len);
	dtx_free(key);
	proto_tls_close(t);
	return rv;
}

void
proto_tls_close(proto_tls *t)
{
	if (t == NULL)
		return;
	if (t->srv != NULL)
		nng_tls_config_free(t->srv);
	if (t->cli != NULL)
		nng_tls_config_free(t->cli);
	mbedtls_x509_crt_free(&t->ca);
	mbedtls_pk_free(&t->key);
	mbedtls_ctr_drbg_free(&t->drbg);
	mbedtls_entropy_free(&t->ent);
	pthread_mutex_destroy(&t->mu);
	dtx_free(t->cert_pem);
	dtx_free(t);
}

void
proto_tls_self(const proto_tls *t, uint32_t *node, proto_role *role)
{
	*node = t->node;
	*role = t->role;
}

nng_tls_config *
proto__tls_nng(const proto_tls *t, bool server)
{
	return server ? t->srv : t->cli;
}

// The context string that makes a hello signature useless anywhere else.
static const char hello_ctx[] = "dtx-hello-v1";

void
proto_hello_digest(
    uint32_t server, const uint8_t nonce[PROTO_NONCE_LEN], uint8_t out[32])
{
	uint8_t buf[4 + PROTO_NONCE_LEN + sizeof(hello_ctx)];
	buf[0] = (uint8_t)(server >> 24);
	buf[1] = (uint8_t)(server >> 16);
	buf[2] = (uint8_t)(server >> 8);
	buf[3] = (uint8_t)server;
	memcpy(buf + 4, nonce, PROTO_NONCE_LEN);
	memcpy(buf + 4 + PROTO_NONCE_LEN, hello_ctx, sizeof(hello_ctx));
	(void)mbedtls_sha256_ret(buf, sizeof(buf), out, 0);
}

dtx_err
proto_tls_hello(proto_tls *t, uint32_t server,
    const uint8_t nonce[PROTO_NONCE_LEN], proto_msg *out)
{
	uint8_t hash[32], sig[MBEDTLS_PK_SIGNATURE_MAX_SIZE];
	size_t sig_len = 0;
	proto_hello_digest(server, nonce, hash);
	pthread_mutex_lock(&t->mu);
	int r = mbedtls_pk_sign(&t->key, MBEDTLS_MD_SHA256, hash, sizeof(hash),
	    sig, &sig_len, mbedtls_ctr_drbg_random, &t->drbg);
	pthread_mutex_unlock(&t->mu);
	if (r != 0 || sig_len == 0 || sig_len > PROTO_MAX_SIG ||
	    t->cert_len > PROTO_MAX_CERT)
		return DTX_EINVAL;
	proto_msg_init(out, PROTO_AUTH);
	dtx_err rv =
	    proto_bytes_set(&out->u.auth.cert, t->cert_pem, t->cert_len);
	if (rv == DTX_OK)
		rv = proto_bytes_set(&out->u.auth.sig, sig, sig_len);
	if (rv != DTX_OK)
		proto_msg_free(out);
	return rv;
}

dtx_err
proto_tls_verify_hello(proto_tls *t, uint32_t server,
    const uint8_t nonce[PROTO_NONCE_LEN], const proto_auth *a, uint32_t *node,
    proto_role *role, char *why, size_t why_len)
{
	mbedtls_x509_crt crt;
	uint8_t hash[32];
	uint32_t flags = 0;
	char *pem = NULL;
	dtx_err rv = DTX_EPERM;

	mbedtls_x509_crt_init(&crt);
	if (a->cert.n == 0 || a->cert.n > PROTO_MAX_CERT || a->sig.n == 0) {
		snprintf(why, why_len, "no certificate or signature");
		goto done;
	}
	// mbedTLS wants PEM with its NUL.
	if ((pem = dtx_alloc(a->cert.n + 1)) == NULL) {
		rv = DTX_ENOMEM;
		goto done;
	}
	memcpy(pem, a->cert.p, a->cert.n);
	pem[a->cert.n] = '\0';
	if (mbedtls_x509_crt_parse(
	        &crt, (const unsigned char *)pem, a->cert.n + 1) != 0) {
		snprintf(why, why_len, "the certificate cannot be parsed");
		goto done;
	}
	if (mbedtls_x509_crt_verify(
	        &crt, &t->ca, NULL, NULL, &flags, NULL, NULL) != 0) {
		snprintf(why, why_len,
		    "the certificate is not from this cluster's CA (flags "
		    "0x%x)",
		    flags);
		goto done;
	}
	proto_hello_digest(server, nonce, hash);
	if (mbedtls_pk_verify(&crt.pk, MBEDTLS_MD_SHA256, hash, sizeof(hash),
	        a->sig.p, a->sig.n) != 0) {
		snprintf(why, why_len, "the signature does not verify");
		goto done;
	}
	if (crt_identity(&crt, node, role) != DTX_OK) {
		snprintf(why, why_len, "the certificate names no node");
		goto done;
	}
	rv = DTX_OK;
done:
	dtx_free(pem);
	mbedtls_x509_crt_free(&crt);
	return rv;
}

dtx_err
proto__random(void *buf, size_t n)
{
	// The kernel's CSPRNG; blocks only before it is first seeded.
	uint8_t *p = buf;
	while (n > 0) {
		ssize_t r = getrandom(p, n, 0);
		if (r < 0)
			return DTX_EIO;
		p += r;
		n -= (size_t)r;
	}
	return DTX_OK;
}
