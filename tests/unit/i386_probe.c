/*
 * i386_probe - the smallest i386 program the host unit tests are built like
 * (gcc -m32, dynamically linked against the i386 libc). scripts/i386-exec.sh
 * runs it once to learn whether this host executes i386 programs itself or
 * needs QEMU user-mode emulation (qemu-i386). Exits 0; prints nothing.
 */
int main(void)
{
    return 0;
}
