/*
 * fwattack: a boot sector that goes after a firmware=bios VM's firmware
 * interfaces (the isolation suite, tests/integration/test_vms.py).
 * SeaBIOS loads sector 0 at 0:7C00 and jumps there in real mode with the
 * boot drive in DL; the stub reads the body (sectors 1-7) behind it with
 * INT 13h. The same program is in sector 0 of the image and of each of its
 * two partitions (the VM's disk is the image or one partition), with the
 * case number in byte MODE_OFFSET (tests/guests/guests.mk):
 *   case 1: fw_cfg (QEMU docs/specs/fw_cfg.rst) with every selector class,
 *           reads far past an item's end, data port writes; the BIOS ROM
 *           alias at the top of 4 GiB (inside hv86's monitor range) read
 *           and written from unreal mode; then a far jump to the reset
 *           vector F000:FFF0, which SeaBIOS turns into a reboot: the VM
 *           must come back to this program again (and again)
 *   case 2: a 32-bit far jump to the reset vector's alias FFFFFFF0h, in
 *           the monitor's linear range: hv86 cannot run code there and
 *           must stop this VM with a reason, nothing else
 *   case 3: a flood of fw_cfg selects and reads, then HLT with IF clear
 * Output on COM1, one line a check, in the guests' protocol (README.md):
 *   PASS/FAIL name, then "FWATTACK case N ..." lines the test reads.
 */
    .code16
    .text
    .globl _start
#define COM1       0x3F8
#define FW_SEL     0x510
#define FW_DATA    0x511
#define MODE_OFFSET 437

_start:
    ljmp $0, $norm
norm:
    cli
    xor %ax, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov $0x7C00, %sp
    mov $0x0207, %ax           /* read 7 sectors */
    mov $0x0002, %cx           /* cylinder 0, sector 2 (LBA 1) */
    xor %dh, %dh               /* head 0, DL: the boot drive */
    mov $0x7E00, %bx
    int $0x13
    jc 1f
    jmp body
1:  mov $msg_readfail, %si
    call puts
2:  hlt
    jmp 2b
msg_readfail: .asciz "FWATTACK cannot read its body\r\n"

    .org MODE_OFFSET
mode: .byte 1
    .org 510
    .byte 0x55, 0xAA

/* ---------------------------------------------------------------- body at 0x7E00 */
body:
    mov $msg_start, %si
    call puts
    movb mode, %al
    add $'0', %al
    call putc
    mov $msg_crlf, %si
    call puts
    cmpb $2, mode
    je case2
    cmpb $3, mode
    je case3

/* case 1 */
    call fwcfg_checks
    call rom_checks
    mov $msg_reset, %si
    call puts
    ljmp $0xF000, $0xFFF0

case2:
    mov $msg_jump, %si
    call puts
    lgdt gdt_desc
    mov %cr0, %eax
    or $1, %al
    mov %eax, %cr0
    .byte 0x66, 0xEA           /* ljmpl $0x10, $0xFFFFFFF0 */
    .long 0xFFFFFFF0
    .word 0x10

case3:
    mov $2000, %bp
1:  mov $FW_SEL, %dx
    mov %bp, %ax
    imul $0x9E37, %ax          /* selectors all over the 16-bit space */
    out %ax, %dx
    mov $FW_DATA, %dx
    mov $64, %cx
2:  in %dx, %al
    loop 2b
    dec %bp
    jnz 1b
    mov $msg_flood, %si
    call puts
3:  hlt
    jmp 3b

/* fw_cfg: signature, selectors that name nothing, past the end. */
fwcfg_checks:
    mov $FW_SEL, %dx
    xor %ax, %ax
    out %ax, %dx               /* FW_CFG_SIGNATURE */
    mov $FW_DATA, %dx
    in %dx, %al
    mov %al, %bl
    in %dx, %al
    mov %al, %bh
    cmp $0x4551, %bx           /* "QE" */
    mov $name_sig, %si
    call check
    in %dx, %al                /* "MU" */
    in %dx, %al
    /* 4 KiB of reads past the signature's 4 bytes: all 0 */
    xor %bl, %bl
    mov $4096, %cx
1:  in %dx, %al
    or %al, %bl
    loop 1b
    cmp $0, %bl
    mov $name_past, %si
    call check
    /* selectors naming nothing: 0x7FFF, 0xFFFF, 0x4019 (write flag + dir: the dir), 0xC000 */
    xor %bl, %bl
    mov $FW_SEL, %dx
    mov $0x7FFF, %ax
    out %ax, %dx
    call read16_or
    mov $FW_SEL, %dx
    mov $0xFFFF, %ax
    out %ax, %dx
    call read16_or
    mov $FW_SEL, %dx
    mov $0xC000, %ax
    out %ax, %dx
    call read16_or
    cmp $0, %bl
    mov $name_unknown, %si
    call check
    /* data port writes and byte selector writes change nothing */
    mov $FW_SEL, %dx
    xor %ax, %ax
    out %ax, %dx
    mov $FW_DATA, %dx
    mov $0x5A, %al
    out %al, %dx
    mov $FW_SEL, %dx
    mov $0x01, %al
    out %al, %dx               /* a byte write: not a selector write */
    mov $FW_DATA, %dx
    in %dx, %al                /* still the signature's first byte */
    cmp $'Q', %al
    mov $name_writes, %si
    call check
    ret

/* OR 16 data bytes into BL. */
read16_or:
    mov $FW_DATA, %dx
    mov $16, %cx
1:  in %dx, %al
    or %al, %bl
    loop 1b
    ret

/* The ROM alias at the top of 4 GiB, from unreal mode: its last 16 bytes
 * are the F segment's (the reset vector), and writes do not stick. */
rom_checks:
    lgdt gdt_desc
    mov %cr0, %eax
    or $1, %al
    mov %eax, %cr0
    mov $0x08, %bx             /* flat 4 GiB data */
    mov %bx, %fs
    and $0xFE, %al
    mov %eax, %cr0
    xor %bx, %bx
    mov %bx, %fs
    mov $0xFFFFFFF0, %esi
    mov $0x000FFFF0, %edi
    mov %fs:(%esi), %eax
    mov %fs:(%edi), %ebx
    cmp %eax, %ebx
    mov $name_alias, %si
    call check
    mov $0xFFFFFFF0, %esi
    movl $0x12345678, %fs:(%esi)
    mov $0xFFFE0000, %esi
    movl $0x9ABCDEF0, %fs:(%esi)
    mov $0xFFFFFFF0, %esi
    mov %fs:(%esi), %eax
    cmp %eax, %ebx
    mov $name_romwrite, %si
    call check
    ret

/* check: ZF set -> "PASS name", else "FAIL name"; name at SI. */
check:
    push %si
    jne 1f
    mov $msg_pass, %si
    jmp 2f
1:  mov $msg_fail, %si
2:  call puts
    pop %si
    call puts
    mov $msg_crlf, %si
    jmp puts

puts:
    lodsb
    test %al, %al
    jz 1f
    call putc
    jmp puts
1:  ret

putc:
    push %dx
    mov $COM1, %dx
    out %al, %dx
    pop %dx
    ret

    .p2align 3
gdt:
    .quad 0
    .quad 0x00CF93000000FFFF   /* 0x08: flat data, 4 GiB */
    .quad 0x00CF9B000000FFFF   /* 0x10: flat 32-bit code, 4 GiB */
gdt_desc:
    .word gdt_desc - gdt - 1
    .long gdt

msg_start:    .asciz "FWATTACK case "
msg_crlf:     .asciz "\r\n"
msg_pass:     .asciz "PASS "
msg_fail:     .asciz "FAIL "
msg_reset:    .asciz "FWATTACK case 1: jump to the reset vector\r\n"
msg_jump:     .asciz "FWATTACK case 2: far jump to FFFFFFF0\r\n"
msg_flood:    .asciz "FWATTACK case 3: flood done\r\n"
name_sig:     .asciz "fwcfg-signature"
name_past:    .asciz "fwcfg-past-end-reads-0"
name_unknown: .asciz "fwcfg-unknown-selectors-read-0"
name_writes:  .asciz "fwcfg-writes-ignored"
name_alias:   .asciz "rom-alias-is-reset-vector"
name_romwrite: .asciz "rom-alias-writes-dropped"
    .org 4096
