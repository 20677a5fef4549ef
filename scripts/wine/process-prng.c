/*
 * bcryptprimitives.dll for wine 8.0, which has none: Bun's Windows runtime imports ProcessPrng
 * from it. ProcessPrng (Windows 10+) fills a buffer with random bytes and always returns TRUE;
 * here it forwards to advapi32's SystemFunction036 (RtlGenRandom), which wine 8.0 does provide.
 * Only for running the Windows executable under wine in tests; real Windows has its own.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T size)
{
    while (size > 0) {
        ULONG chunk = size > 0x40000000 ? 0x40000000 : (ULONG)size;
        if (!SystemFunction036(data, chunk)) return FALSE;
        data += chunk;
        size -= chunk;
    }
    return TRUE;
}

BOOL WINAPI DllMain(HINSTANCE instance, DWORD reason, LPVOID reserved)
{
    (void)instance;
    (void)reason;
    (void)reserved;
    return TRUE;
}
