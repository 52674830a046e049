/* chess-cpu: prints the CPU features a device bundle's programs need, as the CPU and the
 * kernel report them to a running program (cpuid + xgetbv on x86-64, the auxiliary vector
 * on AArch64), so that an emulator's CPU model is seen as a program sees it. Built static
 * by the device build (device-build.ts); read by the bundle's `run check`.
 * Output: one line `arch <name>`, one line `features <name> ...` (Linux /proc/cpuinfo names). */
#include <stdio.h>

#if defined(__x86_64__)
#include <cpuid.h>

static unsigned long long xgetbv0(void) {
    unsigned int lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}

int main(void) {
    unsigned int a, b, c, d;
    unsigned int c1 = 0, b7 = 0, c7 = 0, a71 = 0;
    if (__get_cpuid(1, &a, &b, &c, &d)) c1 = c;
    unsigned int max = __get_cpuid_max(0, 0);
    if (max >= 7) {
        __cpuid_count(7, 0, a, b, c, d);
        b7 = b;
        c7 = c;
        __cpuid_count(7, 1, a, b, c, d);
        a71 = a;
    }
    /* AVX needs the OS to save the YMM state, AVX-512 the opmask and ZMM state */
    unsigned long long xcr0 = (c1 & (1u << 27)) ? xgetbv0() : 0;
    int ymm = (xcr0 & 0x6) == 0x6;
    int zmm = ymm && (xcr0 & 0xe0) == 0xe0;
    printf("arch x86_64\nfeatures");
    if (c1 & (1u << 20)) printf(" sse4_2");
    if (ymm && (c1 & (1u << 28))) printf(" avx");
    if (ymm && (c1 & (1u << 12))) printf(" fma");
    if (ymm && (c1 & (1u << 29))) printf(" f16c");
    if (ymm && (b7 & (1u << 5))) printf(" avx2");
    if (b7 & (1u << 8)) printf(" bmi2");
    if (ymm && (a71 & (1u << 4))) printf(" avx_vnni");
    if (zmm && (b7 & (1u << 16))) printf(" avx512f");
    if (zmm && (b7 & (1u << 17))) printf(" avx512dq");
    if (zmm && (b7 & (1u << 28))) printf(" avx512cd");
    if (zmm && (b7 & (1u << 30))) printf(" avx512bw");
    if (zmm && (b7 & (1u << 31))) printf(" avx512vl");
    if (zmm && (c7 & (1u << 1))) printf(" avx512vbmi");
    if (zmm && (c7 & (1u << 11))) printf(" avx512_vnni");
    if (zmm && (a71 & (1u << 5))) printf(" avx512_bf16");
    printf("\n");
    return 0;
}

#elif defined(__aarch64__)
#include <sys/auxv.h>

int main(void) {
    unsigned long hw = getauxval(AT_HWCAP);
    unsigned long hw2 = getauxval(AT_HWCAP2);
    printf("arch aarch64\nfeatures");
    if (hw & (1ul << 1)) printf(" asimd");
    if (hw & (1ul << 10)) printf(" asimdhp");
    if (hw & (1ul << 20)) printf(" asimddp");
    if (hw & (1ul << 22)) printf(" sve");
    if (hw2 & (1ul << 13)) printf(" i8mm");
    printf("\n");
    return 0;
}

#else
#error "chess-cpu: x86-64 or AArch64 only"
#endif
