/*
 * The guest of the QEMU case: a boot sector (the BIOS loads it at 0x7c00
 * from the first disk and runs it in real mode).
 *
 * It prints "qpatch-guest: booted" on the first serial port, then
 * "qpatch-guest: tick N" about once a second (18 ticks of the BIOS clock,
 * waiting in hlt), so the serial log shows the guest running.
 *
 * It also lays out the two PRD tables (IDE bus-master DMA descriptors) the
 * probe (probe.py) points the IDE controller at:
 *   0x8000  table A: 512 entries of 64 KiB at 0x10000, none marked last
 *           (a transfer consumes the whole 4 KiB page of entries)
 *   0x9000  table B: one entry, 512 bytes at 0x7c00 (this sector), last
 */
	.code16
	.text
	.globl	_start
_start:
	cli
	xorw	%ax, %ax
	movw	%ax, %ds
	movw	%ax, %es
	movw	%ax, %ss
	movw	$0x7c00, %sp
	cld
	movw	$0x8000, %di
	movw	$512, %cx
1:	xorw	%ax, %ax
	stosw			/* address 0x00010000 */
	incw	%ax
	stosw
	decw	%ax
	stosw			/* byte count 0: 64 KiB */
	stosw			/* not the last entry */
	loop	1b
	movw	$0x7c00, %ax	/* di = 0x9000: table B */
	stosw
	xorw	%ax, %ax
	stosw
	movw	$512, %ax
	stosw
	movw	$0x8000, %ax	/* last entry */
	stosw
	sti
	movw	$msg_boot, %si
	call	puts
tick:
	movw	0x46c, %bx	/* BIOS timer ticks, 18.2 per second */
	addw	$18, %bx
2:	hlt
	movw	0x46c, %ax
	subw	%bx, %ax
	js	2b
	incw	count
	movw	$msg_tick, %si
	call	puts
	movw	count, %ax
	call	putdec
	movw	$msg_nl, %si
	call	puts
	jmp	tick

puts:	lodsb
	testb	%al, %al
	jz	9f
	call	putc
	jmp	puts
9:	ret

/* putc: %al to COM1 (0x3f8) once its transmitter is empty */
putc:	pushw	%ax
	movw	$0x3fd, %dx
1:	inb	%dx, %al
	testb	$0x20, %al
	jz	1b
	popw	%ax
	movw	$0x3f8, %dx
	outb	%al, %dx
	ret

/* putdec: %ax in decimal */
putdec:	movw	$10, %bx
	xorw	%cx, %cx
1:	xorw	%dx, %dx
	divw	%bx
	pushw	%dx
	incw	%cx
	testw	%ax, %ax
	jnz	1b
2:	popw	%ax
	addb	$'0', %al
	call	putc
	loop	2b
	ret

msg_boot: .asciz "qpatch-guest: booted\r\n"
msg_tick: .asciz "qpatch-guest: tick "
msg_nl:	.asciz "\r\n"
count:	.word	0
	.org	510
	.byte	0x55, 0xaa
