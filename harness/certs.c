// SPDX-License-Identifier: MIT
//
// A cluster's certificates, made in-process with mbedTLS's x509write API
// (the library nng and proto/tls.c already link, so the certificates are
// made by the code that verifies them, need no openssl command at run
// time and take a few milliseconds per node): a CA (an EC P-256 key, a
// self-signed certificate with basicConstraints CA:TRUE) and, per node,
// an EC P-256 key and a certificate signed by it whose subject is
// CN=<role>-<id>, OU=<role>, O=dtx (what proto_subject_identity parses).
// Keys are written 0600, through a temporary file renamed into place.

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "harness_int.h"

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/pk.h>
#include <mbedtls/x509_crt.h>

#define PEM_MAX 4096

typedef struct certs_ctx {
	mbedtls_entropy_context ent;
	mbedtls_ctr_drbg_context drbg;
	mbedtls_pk_context ca_key;
	mbedtls_x509_crt ca_crt;
	char ca_name[256]; // the CA's subject, the issuer of every cert
} certs_ctx;

proto_role
hx_proto_role(dtx_role r)
{
	return r == DTX_ROLE_COORDINATOR ? PROTO_ROLE_COORDINATOR
	    : r == DTX_ROLE_PARTICIPANT  ? PROTO_ROLE_PARTICIPANT
	    : r == DTX_ROLE_SAGA         ? PROTO_ROLE_SAGA
	                                 : PROTO_ROLE_CLIENT;
}

void
hx_certs_paths(const char *dir, proto_role role, uint32_t id, char *cert,
    char *key, size_t len)
{
	if (role == PROTO_ROLE_NONE) {
		snprintf(cert, len, "%s/ca.crt", dir);
		snprintf(key, len, "%s/ca.key", dir);
		return;
	}
	snprintf(cert, len, "%s/%s-%u.crt", dir, proto_role_name(role), id);
	snprintf(key, len, "%s/%s-%u.key", dir, proto_role_name(role), id);
}

size_t
hx_certs_nodes_of(const dtx_topo *t, hx_cert_node *out, size_t max)
{
	size_t n = 0;
	uint32_t client = t->max_id;
	for (uint32_t i = 0; i < t->n && n < max; i++) {
		const dtx_node *nd = &t->nodes[i];
		if (nd->role == DTX_ROLE_CLIENT) {
			client = nd->id;
			continue;
		}
		out[n].id = nd->id;
		out[n++].role = hx_proto_role(nd->role);
	}
	const proto_role ext[] = { PROTO_ROLE_CLIENT, PROTO_ROLE_ADMIN,
		PROTO_ROLE_HARNESS };
	for (size_t i = 0; i < 3 && n < max; i++)
		out[n++] = (hx_cert_node) { .id = client, .role = ext[i] };
	return n;
}

// Writes len bytes of data to path through path.tmp with mode, fsynced,
// then renamed into place.
static dtx_err
write_file(const char *path, const unsigned char *data, size_t len, mode_t mode,
    char *err, size_t errlen)
{
	char tmp[PATH_MAX + 8];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	unlink(tmp);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0) {
		dtx_errf(
		    err, errlen, "cannot create %s: %s", tmp, strerror(errno));
		return dtx_from_errno(errno);
	}
	bool ok = fchmod(fd, mode) == 0 &&
	    write(fd, data, len) == (ssize_t)len && fsync(fd) == 0;
	int e = errno;
	ok = close(fd) == 0 && ok;
	if (ok && rename(tmp, path) == 0)
		return DTX_OK;
	e = ok ? errno : e;
	unlink(tmp);
	dtx_errf(err, errlen, "cannot write %s: %s", path, strerror(e));
	return dtx_from_errno(e);
}

// "YYYYMMDDhhmmss" (UTC) of now + days (negative: back).
static void
stamp(char *buf, size_t len, double days)
{
	time_t t = time(NULL) + (time_t)(days * 86400.0);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y%m%d%H%M%S", &tm);
}

// A fresh EC P-256 key into *key (initialised by the caller).
static dtx_err
gen_key(certs_ctx *x, mbedtls_pk_context *key)
{
	if (mbedtls_pk_setup(
	        key, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)) != 0 ||
	    mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(*key),
	        mbedtls_ctr_drbg_random, &x->drbg) != 0)
		return DTX_EIO;
	return DTX_OK;
}

// Signs a certificate for key's public half with subject subj, issued by
// x's CA (or self-signed when ca), valid for days, and writes its PEM to
// pem (PEM_MAX bytes).
static dtx_err
sign_cert(certs_ctx *x, mbedtls_pk_context *key, const char *subj, bool ca,
    uint32_t days, unsigned char *pem)
{
	mbedtls_x509write_cert w;
	mbedtls_mpi serial;
	unsigned char sb[16];
	char from[16], to[16];
	dtx_err rv = DTX_EIO;
	mbedtls_x509write_crt_init(&w);
	mbedtls_mpi_init(&serial);
	// A random positive 127-bit serial: no two certificates share one.
	if (mbedtls_ctr_drbg_random(&x->drbg, sb, sizeof(sb)) != 0)
		goto done;
	sb[0] = (unsigned char)((sb[0] & 0x7f) | 0x01);
	stamp(from, sizeof(from), -1.0 / 24); // an hour of clock skew
	stamp(to, sizeof(to), days);
	mbedtls_x509write_crt_set_version(&w, MBEDTLS_X509_CRT_VERSION_3);
	mbedtls_x509write_crt_set_md_alg(&w, MBEDTLS_MD_SHA256);
	mbedtls_x509write_crt_set_subject_key(&w, key);
	mbedtls_x509write_crt_set_issuer_key(&w, ca ? key : &x->ca_key);
	if (mbedtls_mpi_read_binary(&serial, sb, sizeof(sb)) != 0 ||
	    mbedtls_x509write_crt_set_serial(&w, &serial) != 0 ||
	    mbedtls_x509write_crt_set_subject_name(&w, subj) != 0 ||
	    mbedtls_x509write_crt_set_issuer_name(&w, ca ? subj : x->ca_name) !=
	        0 ||
	    mbedtls_x509write_crt_set_validity(&w, from, to) != 0 ||
	    mbedtls_x509write_crt_set_basic_constraints(&w, ca ? 1 : 0, -1) !=
	        0 ||
	    mbedtls_x509write_crt_set_subject_key_identifier(&w) != 0 ||
	    mbedtls_x509write_crt_set_authority_key_identifier(&w) != 0 ||
	    mbedtls_x509write_crt_set_key_usage(&w,
	        ca ? MBEDTLS_X509_KU_KEY_CERT_SIGN | MBEDTLS_X509_KU_CRL_SIGN
	           : MBEDTLS_X509_KU_DIGITAL_SIGNATURE |
	                MBEDTLS_X509_KU_KEY_AGREEMENT) != 0 ||
	    mbedtls_x509write_crt_pem(
	        &w, pem, PEM_MAX, mbedtls_ctr_drbg_random, &x->drbg) != 0)
		goto done;
	rv = DTX_OK;
done:
	mbedtls_mpi_free(&serial);
	mbedtls_x509write_crt_free(&w);
	return rv;
}

// Makes a key and a certificate for subj and writes them to cert_path and
// key_path (0600). With ca, self-signed; the CA is then x's.
static dtx_err
issue(certs_ctx *x, const char *subj, bool ca, uint32_t days,
    const char *cert_path, const char *key_path, char *err, size_t errlen)
{
	unsigned char pem[PEM_MAX], kpem[PEM_MAX];
	mbedtls_pk_context key;
	mbedtls_pk_init(&key);
	dtx_err rv = gen_key(x, &key);
	if (rv == DTX_OK)
		rv = sign_cert(x, &key, subj, ca, days, pem);
	if (rv == DTX_OK && mbedtls_pk_write_key_pem(&key, kpem, sizeof(kpem)))
		rv = DTX_EIO;
	if (rv != DTX_OK)
		dtx_errf(err, errlen, "mbedTLS cannot make the certificate %s",
		    subj);
	if (rv == DTX_OK)
		rv = write_file(
		    key_path, kpem, strlen((char *)kpem), 0600, err, errlen);
	if (rv == DTX_OK)
		rv = write_file(
		    cert_path, pem, strlen((char *)pem), 0644, err, errlen);
	if (rv == DTX_OK && ca) {
		mbedtls_pk_free(&x->ca_key);
		x->ca_key = key; // x owns it now
		snprintf(x->ca_name, sizeof(x->ca_name), "%s", subj);
		return DTX_OK;
	}
	memset(kpem, 0, sizeof(kpem));
	mbedtls_pk_free(&key);
	return rv;
}

// Loads the CA of dir into x.
static dtx_err
load_ca(certs_ctx *x, const char *dir, char *err, size_t errlen)
{
	char crt[PATH_MAX + 16], key[PATH_MAX + 16];
	hx_certs_paths(dir, PROTO_ROLE_NONE, 0, crt, key, sizeof(crt));
	if (mbedtls_x509_crt_parse_file(&x->ca_crt, crt) != 0) {
		dtx_errf(err, errlen,
		    "%s is missing or holds no certificate (dtx certs init "
		    "makes one)",
		    crt);
		return DTX_EINVAL;
	}
	if (mbedtls_pk_parse_keyfile(&x->ca_key, key, NULL) != 0) {
		dtx_errf(err, errlen,
		    "%s is missing or holds no unencrypted private key", key);
		return DTX_EINVAL;
	}
	if (mbedtls_pk_check_pair(&x->ca_crt.pk, &x->ca_key) != 0) {
		dtx_errf(err, errlen, "%s is not the key of %s", key, crt);
		return DTX_EINVAL;
	}
	if (mbedtls_x509_dn_gets(
	        x->ca_name, sizeof(x->ca_name), &x->ca_crt.subject) < 0) {
		dtx_errf(err, errlen, "%s: subject too long", crt);
		return DTX_EINVAL;
	}
	return DTX_OK;
}

static dtx_err
ctx_init(certs_ctx *x, char *err, size_t errlen)
{
	mbedtls_entropy_init(&x->ent);
	mbedtls_ctr_drbg_init(&x->drbg);
	mbedtls_pk_init(&x->ca_key);
	mbedtls_x509_crt_init(&x->ca_crt);
	if (mbedtls_ctr_drbg_seed(&x->drbg, mbedtls_entropy_func, &x->ent,
	        (const unsigned char *)"dtx-certs", 9) != 0) {
		dtx_errf(err, errlen, "cannot seed the random generator");
		return DTX_EIO;
	}
	return DTX_OK;
}

static void
ctx_fini(certs_ctx *x)
{
	mbedtls_x509_crt_free(&x->ca_crt);
	mbedtls_pk_free(&x->ca_key);
	mbedtls_ctr_drbg_free(&x->drbg);
	mbedtls_entropy_free(&x->ent);
}

dtx_err
hx_cert_name_parse(const char *s, hx_cert_node *out)
{
	const char *dash = strrchr(s, '-');
	char *end;
	if (dash == NULL || dash[1] < '0' || dash[1] > '9')
		return DTX_EINVAL;
	unsigned long id = strtoul(dash + 1, &end, 10);
	proto_role r;
	if (*end != '\0' || id >= DTX_TOPO_MAX ||
	    proto_role_parse(s, (size_t)(dash - s), &r) != DTX_OK)
		return DTX_EINVAL;
	*out = (hx_cert_node) { .id = (uint32_t)id, .role = r };
	return DTX_OK;
}

// Decides whether a new CA is made: not when keep_ca or only (the CA must
// then be there), when there is none, or with force.
static dtx_err
want_new_ca(const hx_certs_opts *o, const char *crt, const char *key,
    bool *fresh, char *err, size_t errlen)
{
	bool have = access(crt, F_OK) == 0 || access(key, F_OK) == 0;
	if (o->keep_ca || o->only != NULL) {
		*fresh = false;
		return DTX_OK; // load_ca says what is missing
	}
	if (have && !o->force) {
		dtx_errf(err, errlen,
		    "%s already holds a CA (%s); --force makes a new one and "
		    "reissues every certificate, --keep-ca reissues the nodes' "
		    "with it",
		    o->dir, crt);
		return DTX_EEXIST;
	}
	*fresh = true;
	return DTX_OK;
}

dtx_err
hx_certs_init(const hx_certs_opts *o, FILE *out, char *err, size_t errlen)
{
	char crt[PATH_MAX + 16], key[PATH_MAX + 16], subj[128];
	certs_ctx x;
	bool fresh = false;
	uint32_t days = o->days ? o->days : HX_CERT_DAYS;
	dtx_err rv = dtx_mkdir_p(o->dir);
	if (rv != DTX_OK) {
		dtx_errf(err, errlen, "cannot create %s: %s", o->dir,
		    dtx_strerror(rv));
		return rv;
	}
	hx_certs_paths(o->dir, PROTO_ROLE_NONE, 0, crt, key, sizeof(crt));
	if ((rv = want_new_ca(o, crt, key, &fresh, err, errlen)) != DTX_OK)
		return rv;
	if ((rv = ctx_init(&x, err, errlen)) != DTX_OK)
		goto done;
	if (fresh) {
		unsigned char tag[4] = { 0 };
		(void)mbedtls_ctr_drbg_random(&x.drbg, tag, sizeof(tag));
		snprintf(subj, sizeof(subj), "CN=dtx-ca %02x%02x%02x%02x,O=dtx",
		    tag[0], tag[1], tag[2], tag[3]);
		rv = issue(&x, subj, true, o->ca_days ? o->ca_days : HX_CA_DAYS,
		    crt, key, err, errlen);
		if (rv == DTX_OK && out != NULL)
			fprintf(out, "%s\n", crt);
	} else {
		rv = load_ca(&x, o->dir, err, errlen);
	}
	bool found = o->only == NULL;
	for (size_t i = 0; i < o->n && rv == DTX_OK; i++) {
		const hx_cert_node *nd = &o->nodes[i];
		char name[48];
		snprintf(name, sizeof(name), "%s-%u", proto_role_name(nd->role),
		    nd->id);
		if (o->only != NULL && strcmp(o->only, name) != 0)
			continue;
		found = true;
		hx_certs_paths(o->dir, nd->role, nd->id, crt, key, sizeof(crt));
		if (o->missing_only && !fresh && access(crt, F_OK) == 0 &&
		    access(key, F_OK) == 0)
			continue;
		snprintf(subj, sizeof(subj), "CN=%s,OU=%s,O=dtx", name,
		    proto_role_name(nd->role));
		rv = issue(&x, subj, false, days, crt, key, err, errlen);
		if (rv == DTX_OK && out != NULL)
			fprintf(out, "%s\n", crt);
	}
	if (rv == DTX_OK && !found) {
		dtx_errf(err, errlen, "no node %s in the node list", o->only);
		rv = DTX_ENOENT;
	}
done:
	ctx_fini(&x);
	return rv;
}

dtx_err
hx_certs_open(const char *dir, proto_role role, uint32_t id, proto_tls **out,
    char *err, size_t errlen)
{
	char ca[PATH_MAX + 16], cakey[PATH_MAX + 16];
	char crt[PATH_MAX + 16], key[PATH_MAX + 16], why[256];
	hx_certs_paths(dir, PROTO_ROLE_NONE, 0, ca, cakey, sizeof(ca));
	hx_certs_paths(dir, role, id, crt, key, sizeof(crt));
	dtx_err rv = proto_tls_open(ca, crt, key, why, sizeof(why), out);
	if (rv != DTX_OK)
		dtx_errf(err, errlen, "%s: %s", crt, why);
	return rv;
}

dtx_err
hx_certs_ensure(const char *dir, const dtx_topo *t, char *err, size_t errlen)
{
	char crt[PATH_MAX + 16], key[PATH_MAX + 16];
	hx_cert_node nodes[DTX_TOPO_MAX + 3];
	hx_certs_paths(dir, PROTO_ROLE_NONE, 0, crt, key, sizeof(crt));
	hx_certs_opts o = {
		.dir = dir,
		.nodes = nodes,
		.n = hx_certs_nodes_of(t, nodes, DTX_TOPO_MAX + 3),
		.keep_ca = access(crt, F_OK) == 0 || access(key, F_OK) == 0,
		.missing_only = true,
	};
	return hx_certs_init(&o, NULL, err, errlen);
}

const char *
hx_url_hostport(const char *url)
{
	if (strncmp(url, "tcp://", 6) == 0)
		return url + 6;
	if (strncmp(url, "tls+tcp://", 10) == 0)
		return url + 10;
	return NULL;
}

dtx_err
hx_cluster_conn(
    hx_cluster *c, bool harness, hx_conn **out, char *err, size_t errlen)
{
	const dtx_topo *t = hx_cluster_topo(c);
	if (!hx_cluster_is_tls(c)) {
		dtx_err rv = hx_conn_open(t, out);
		if (rv != DTX_OK)
			dtx_errf(err, errlen, "cannot open clients: %s",
			    dtx_strerror(rv));
		return rv;
	}
	char dir[PATH_MAX + 8];
	snprintf(dir, sizeof(dir), "%s/certs", hx_cluster_dir(c));
	const dtx_node *me = dtx_topo_first(t, DTX_ROLE_CLIENT);
	uint32_t id = me != NULL ? me->id : t->max_id;
	proto_tls *tls = NULL, *priv = NULL;
	dtx_err rv =
	    hx_certs_open(dir, PROTO_ROLE_CLIENT, id, &tls, err, errlen);
	if (rv == DTX_OK)
		rv = hx_certs_open(dir,
		    harness ? PROTO_ROLE_HARNESS : PROTO_ROLE_ADMIN, id, &priv,
		    err, errlen);
	if (rv != DTX_OK) {
		proto_tls_close(tls);
		return rv;
	}
	rv = hx_conn_open_as(t, tls, priv, out);
	if (rv != DTX_OK)
		dtx_errf(
		    err, errlen, "cannot open clients: %s", dtx_strerror(rv));
	return rv;
}
