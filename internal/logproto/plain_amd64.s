#include "textflag.h"

// func plainBlocksSSE2(b []byte) int
//
// For each block of 16 bytes x: a byte is plain if it is above 0x1f and
// below 0x7f as a signed byte (so not 0x80 or above either) and is none
// of '"' (0x22), '&' (0x26), '<' (0x3c), '>' (0x3e), '\\' (0x5c). With one
// bit forced, '"' and '&' are both 0x26, '<' and '>' both 0x3e.
TEXT ·plainBlocksSSE2(SB), NOSPLIT, $0-32
	MOVQ b_base+0(FP), SI
	MOVQ b_len+8(FP), CX
	ANDQ $~15, CX
	XORQ AX, AX
	CMPQ CX, $0
	JEQ  done

	MOVQ $0x1f1f1f1f1f1f1f1f, DX
	MOVQ DX, X8
	PUNPCKLQDQ X8, X8
	MOVQ $0x7f7f7f7f7f7f7f7f, DX
	MOVQ DX, X9
	PUNPCKLQDQ X9, X9
	MOVQ $0x0404040404040404, DX
	MOVQ DX, X10
	PUNPCKLQDQ X10, X10
	MOVQ $0x2626262626262626, DX
	MOVQ DX, X11
	PUNPCKLQDQ X11, X11
	MOVQ $0x0202020202020202, DX
	MOVQ DX, X12
	PUNPCKLQDQ X12, X12
	MOVQ $0x3e3e3e3e3e3e3e3e, DX
	MOVQ DX, X13
	PUNPCKLQDQ X13, X13
	MOVQ $0x5c5c5c5c5c5c5c5c, DX
	MOVQ DX, X14
	PUNPCKLQDQ X14, X14

loop:
	MOVOU (SI)(AX*1), X0
	// X1: above 0x1f; X2: below 0x7f (signed)
	MOVO    X0, X1
	PCMPGTB X8, X1
	MOVO    X9, X2
	PCMPGTB X0, X2
	PAND    X2, X1
	// X3: '"' or '&'
	MOVO    X0, X3
	POR     X10, X3
	PCMPEQB X11, X3
	// X4: '<' or '>'
	MOVO    X0, X4
	POR     X12, X4
	PCMPEQB X13, X4
	POR     X4, X3
	// X5: '\\'
	MOVO    X0, X5
	PCMPEQB X14, X5
	POR     X5, X3
	// X3 = X1 &^ X3: the plain bytes
	PANDN    X1, X3
	PMOVMSKB X3, DX
	XORL     $0xffff, DX
	JNZ      found
	ADDQ     $16, AX
	CMPQ     AX, CX
	JB       loop

done:
	MOVQ AX, ret+24(FP)
	RET

found:
	BSFL DX, DX
	ADDQ DX, AX
	MOVQ AX, ret+24(FP)
	RET

// func plainBlocksAVX2(b []byte) int
//
// plainBlocksSSE2 32 bytes at a time, then a last block of 16 if there
// is one.
TEXT ·plainBlocksAVX2(SB), NOSPLIT, $0-32
	MOVQ b_base+0(FP), SI
	MOVQ b_len+8(FP), CX
	MOVQ CX, BX
	ANDQ $~31, BX
	ANDQ $~15, CX
	XORQ AX, AX
	CMPQ CX, $0
	JEQ  avxdone

	MOVQ $0x1f1f1f1f1f1f1f1f, DX
	MOVQ DX, X8
	VPBROADCASTQ X8, Y8
	MOVQ $0x7f7f7f7f7f7f7f7f, DX
	MOVQ DX, X9
	VPBROADCASTQ X9, Y9
	MOVQ $0x0404040404040404, DX
	MOVQ DX, X10
	VPBROADCASTQ X10, Y10
	MOVQ $0x2626262626262626, DX
	MOVQ DX, X11
	VPBROADCASTQ X11, Y11
	MOVQ $0x0202020202020202, DX
	MOVQ DX, X12
	VPBROADCASTQ X12, Y12
	MOVQ $0x3e3e3e3e3e3e3e3e, DX
	MOVQ DX, X13
	VPBROADCASTQ X13, Y13
	MOVQ $0x5c5c5c5c5c5c5c5c, DX
	MOVQ DX, X14
	VPBROADCASTQ X14, Y14

	CMPQ BX, $0
	JEQ  avxlast

avxloop:
	VMOVDQU (SI)(AX*1), Y0
	VPCMPGTB Y8, Y0, Y1  // above 0x1f
	VPCMPGTB Y0, Y9, Y2  // below 0x7f (signed)
	VPAND    Y2, Y1, Y1
	VPOR     Y10, Y0, Y3
	VPCMPEQB Y11, Y3, Y3 // '"' or '&'
	VPOR     Y12, Y0, Y4
	VPCMPEQB Y13, Y4, Y4 // '<' or '>'
	VPOR     Y4, Y3, Y3
	VPCMPEQB Y14, Y0, Y5 // '\\'
	VPOR     Y5, Y3, Y3
	VPANDN   Y1, Y3, Y3  // plain: Y1 &^ Y3
	VPMOVMSKB Y3, DX
	NOTL     DX
	TESTL    DX, DX
	JNZ      avxfound
	ADDQ     $32, AX
	CMPQ     AX, BX
	JB       avxloop

avxlast:
	// One block of 16 left, or none.
	CMPQ AX, CX
	JAE  avxend
	VMOVDQU (SI)(AX*1), X0
	VPCMPGTB X8, X0, X1
	VPCMPGTB X0, X9, X2
	VPAND    X2, X1, X1
	VPOR     X10, X0, X3
	VPCMPEQB X11, X3, X3
	VPOR     X12, X0, X4
	VPCMPEQB X13, X4, X4
	VPOR     X4, X3, X3
	VPCMPEQB X14, X0, X5
	VPOR     X5, X3, X3
	VPANDN   X1, X3, X3
	VPMOVMSKB X3, DX
	XORL     $0xffff, DX
	JNZ      avxfound
	ADDQ     $16, AX

avxend:
	VZEROUPPER

avxdone:
	MOVQ AX, ret+24(FP)
	RET

avxfound:
	VZEROUPPER
	BSFL DX, DX
	ADDQ DX, AX
	MOVQ AX, ret+24(FP)
	RET
