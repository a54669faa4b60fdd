/* cm.h -- the includes every cmocka test needs, in the order cmocka wants them. */
#ifndef P2A_TEST_CM_H
#define P2A_TEST_CM_H
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#endif
