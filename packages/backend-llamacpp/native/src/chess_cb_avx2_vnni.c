/* The `avx2vnni` column-block table: chess_cb_avx2.c compiled with AVX-VNNI (256-bit
 * vpdpbusd for the integer steps). Same results as `avx2` bit for bit. */
#define CS_AVX2_VNNI 1
#include "chess_cb_avx2.c"
