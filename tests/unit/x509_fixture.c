#include "x509_fixture.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

X509 *fx_reparse(X509 *cert)
{
	unsigned char *der = NULL;
	const unsigned char *p;
	int n = i2d_X509(cert, &der);
	X509 *back;

	assert_true(n > 0);
	p = der;
	back = d2i_X509(NULL, &p, n);
	OPENSSL_free(der);
	assert_non_null(back);
	return back;
}
