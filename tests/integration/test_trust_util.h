// SPDX-License-Identifier: MIT
//
// Certificates for the trust tests, made with the openssl command in a
// test's temporary directory: a CA, then an EC P-256 key and a
// certificate per node signed by it (a second CA makes certificates no
// cluster trusts). Also a TLS client for a given certificate.

#ifndef TEST_TRUST_UTIL_H
#define TEST_TRUST_UTIL_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "proto.h"

#define TT_FN static __attribute__((unused))

// Runs a shell command line quietly; true when it exits 0.
TT_FN bool
tt_sh(const char *cmd)
{
	char line[4096];
	snprintf(line, sizeof(line), "(%s) >/dev/null 2>&1", cmd);
	return system(line) == 0;
}

// True when the openssl command is there.
TT_FN bool
tt_have_openssl(void)
{
	return tt_sh("openssl version");
}

// Makes DIR/NAME.key and a self-signed CA certificate DIR/NAME.crt.
TT_FN bool
tt_ca(const char *dir, const char *name)
{
	char cmd[2048];
	snprintf(cmd, sizeof(cmd),
	    "cd '%s' && openssl genpkey -algorithm EC -pkeyopt "
	    "ec_paramgen_curve:P-256 -out %s.key && openssl req -x509 -new "
	    "-key %s.key -subj '/CN=%s' -days 30 -sha256 -out %s.crt",
	    dir, name, name, name, name);
	return tt_sh(cmd);
}

// Makes DIR/FILE.key and DIR/FILE.crt with subject subj (e.g.
// "/CN=participant-1"), signed by the CA DIR/CA.{crt,key}.
TT_FN bool
tt_cert(const char *dir, const char *ca, const char *file, const char *subj)
{
	char cmd[2048];
	snprintf(cmd, sizeof(cmd),
	    "cd '%s' && openssl genpkey -algorithm EC -pkeyopt "
	    "ec_paramgen_curve:P-256 -out %s.key && openssl req -new -key "
	    "%s.key -subj '%s' -out %s.csr && openssl x509 -req -in %s.csr "
	    "-CA %s.crt -CAkey %s.key -CAcreateserial -days 30 -sha256 "
	    "-out %s.crt",
	    dir, file, file, subj, file, file, ca, ca, file);
	return tt_sh(cmd);
}

// Opens the TLS material DIR/CA.crt, DIR/FILE.crt, DIR/FILE.key.
TT_FN dtx_err
tt_tls(const char *dir, const char *ca, const char *file, proto_tls **out)
{
	char a[512], c[512], k[512], why[256];
	snprintf(a, sizeof(a), "%s/%s.crt", dir, ca);
	snprintf(c, sizeof(c), "%s/%s.crt", dir, file);
	snprintf(k, sizeof(k), "%s/%s.key", dir, file);
	dtx_err rv = proto_tls_open(a, c, k, why, sizeof(why), out);
	if (rv != DTX_OK)
		fprintf(stderr, "tls %s: %s\n", file, why);
	return rv;
}

#endif // TEST_TRUST_UTIL_H
