/* The `avx2vnni` table: the AVX2 kernels (chess_avx2.c) compiled with AVX-VNNI, whose
 * 256-bit vpdpbusd / vpdpwssd replace vpmaddubsw + vpmaddwd + vpaddd and vpmaddwd +
 * vpaddd in the integer dot steps. For the x86 CPUs with AVX-VNNI and no AVX-512: Intel's
 * client cores since Alder Lake (laptops, small desktops, N-series mini PCs). Same
 * results as `avx2` bit for bit (exact integer sums; test_kernels primitives). */
#define CS_AVX2_VNNI 1
#include "chess_avx2.c"
