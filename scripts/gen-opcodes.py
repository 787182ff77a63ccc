#!/usr/bin/env python3
"""gen-opcodes.py OPCODES.def MNEMONICS.def OUT.c

Turn the hv86 opcode table (bt/opcodes.def, format described at its top)
into the C tables declared in bt/decode_tables.h. Standard library only.
Rows of one (map, opcode) are kept in file order: the decoder takes the
first row whose predicates match, so specific rows go before general ones.
"""
import re
import sys

MAPS = {(): 0, ('0F',): 1, ('0F', '38'): 2, ('0F', '3A'): 3}

# Fixed-register operand names -> (method, C register, size code).
FIXED = {
    'AL': ('OPM_FIXED', 'DEC_REG_AL', 'SZ_B'), 'CL': ('OPM_FIXED', 'DEC_REG_CL', 'SZ_B'),
    'DX': ('OPM_FIXED', 'DEC_REG_DX', 'SZ_W'), 'AX': ('OPM_FIXED', 'DEC_REG_AX', 'SZ_W'),
    'eAX': ('OPM_FIXED_V', 'DEC_REG_EAX', 'SZ_V'),
    'ST0': ('OPM_FIXED', 'DEC_REG_ST0', 'SZ_T'), 'XMM0': ('OPM_FIXED', 'DEC_REG_XMM0', 'SZ_X'),
    'ES': ('OPM_FIXED', 'DEC_REG_ES', 'SZ_W'), 'CS': ('OPM_FIXED', 'DEC_REG_CS', 'SZ_W'),
    'SS': ('OPM_FIXED', 'DEC_REG_SS', 'SZ_W'), 'DS': ('OPM_FIXED', 'DEC_REG_DS', 'SZ_W'),
    'FS': ('OPM_FIXED', 'DEC_REG_FS', 'SZ_W'), 'GS': ('OPM_FIXED', 'DEC_REG_GS', 'SZ_W'),
    '1': ('OPM_ONE', 'DEC_REG_NONE', 'SZ_B'),
}
# Addressing methods, longest name first; value: (C method, default size).
METHODS = [('STi', 'OPM_STI', 't'), ('Rf', 'OPM_RF', 'd'), ('Is', 'OPM_IS', 'b'),
           ('E', 'OPM_E', None), ('M', 'OPM_M', '0'), ('R', 'OPM_R', None),
           ('G', 'OPM_G', None), ('Z', 'OPM_Z', None), ('S', 'OPM_S', 'w'),
           ('C', 'OPM_C', 'd'), ('D', 'OPM_D', 'd'), ('P', 'OPM_P', 'q'),
           ('Q', 'OPM_Q', 'q'), ('N', 'OPM_N', 'q'), ('V', 'OPM_V', 'x'),
           ('W', 'OPM_W', 'x'), ('U', 'OPM_U', 'x'), ('I', 'OPM_I', None),
           ('J', 'OPM_J', None), ('A', 'OPM_A', 'p'), ('O', 'OPM_O', None),
           ('X', 'OPM_X', None), ('Y', 'OPM_Y', None)]
SIZES = {'0': 'SZ_0', 'b': 'SZ_B', 'w': 'SZ_W', 'd': 'SZ_D', 'q': 'SZ_Q', 'x': 'SZ_X',
         't': 'SZ_T', 'v': 'SZ_V', 'z': 'SZ_Z', 'p': 'SZ_P', 's': 'SZ_S', 'a': 'SZ_A',
         'e': 'SZ_E', 'f': 'SZ_F', 'F': 'SZ_FX', 'l': 'SZ_LINE', 'vw': 'SZ_VW', 'dw': 'SZ_DW', 'db': 'SZ_DB'}
ACCESS = {'r': 'SPEC_READ', 'w': 'SPEC_WRITE', 'rw': 'SPEC_READ | SPEC_WRITE', 'n': 'SPEC_NOACCESS'}
MEM_ONLY = {'OPM_M'}
REG_ONLY = {'OPM_R', 'OPM_N', 'OPM_U', 'OPM_STI'}
MODRM_METHODS = {'OPM_E', 'OPM_M', 'OPM_R', 'OPM_RF', 'OPM_G', 'OPM_S', 'OPM_C', 'OPM_D',
                 'OPM_P', 'OPM_Q', 'OPM_N', 'OPM_V', 'OPM_W', 'OPM_U', 'OPM_STI'}
FLAGS = {'c': 'DEC_FL_CF', 'p': 'DEC_FL_PF', 'a': 'DEC_FL_AF', 'z': 'DEC_FL_ZF',
         's': 'DEC_FL_SF', 'o': 'DEC_FL_OF', 't': 'DEC_FL_TF', 'i': 'DEC_FL_IF',
         'd': 'DEC_FL_DF', 'l': 'DEC_FL_IOPL', 'n': 'DEC_FL_NT', 'r': 'DEC_FL_RF',
         'v': 'DEC_FL_VM', 'x': 'DEC_FL_AC', 'A': 'DEC_FL_ARITH', '*': 'DEC_FL_ALL'}
ATTRS = {'priv': 'DEC_A_PRIV', 'sens': 'DEC_A_SENSITIVE', 'iopl': 'DEC_A_IOPL',
         'io': 'DEC_A_IO', 'lock': 'DEC_A_LOCKABLE', 'str': 'DEC_A_STRING',
         'x87': 'DEC_A_X87', 'mmx': 'DEC_A_MMX', 'sse': 'DEC_A_SSE',
         'segld': 'DEC_A_SEGLOAD', 'serial': 'DEC_A_SERIAL', 'nop': 'DEC_A_NOP',
         'moffs': 'DEC_A_MOFFS', 'ind': 'DEC_A_INDIRECT',
         'memr': 'DEC_A_MEM_READ', 'memw': 'DEC_A_MEM_WRITE'}
CF = {'jmp': 'DEC_CF_JMP', 'jcc': 'DEC_CF_JCC', 'call': 'DEC_CF_CALL', 'ret': 'DEC_CF_RET',
      'retf': 'DEC_CF_RETF', 'iret': 'DEC_CF_IRET', 'int': 'DEC_CF_INT', 'int3': 'DEC_CF_INT3',
      'int1': 'DEC_CF_INT1', 'into': 'DEC_CF_INTO', 'loop': 'DEC_CF_LOOP',
      'loopcc': 'DEC_CF_LOOPCC', 'jcxz': 'DEC_CF_JCXZ', 'jmpfar': 'DEC_CF_JMP_FAR',
      'callfar': 'DEC_CF_CALL_FAR', 'sysenter': 'DEC_CF_SYSENTER', 'sysexit': 'DEC_CF_SYSEXIT',
      'syscall': 'DEC_CF_SYSCALL', 'sysret': 'DEC_CF_SYSRET', 'hlt': 'DEC_CF_HLT',
      'ud': 'DEC_CF_UD'}
PFX = {'none': 'PFX_NONE', '66': 'PFX_66', 'F3': 'PFX_F3', 'F2': 'PFX_F2'}


class DefError(Exception):
    pass


def parse_operand(tok):
    """'Ev:rw' -> dict(method, size, flags, reg)."""
    explicit = tok.endswith('!')
    tok = tok.rstrip('!')
    spec, _, acc = tok.partition(':')
    acc = acc or 'r'
    if acc not in ACCESS:
        raise DefError('bad access %r' % acc)
    flags = [ACCESS[acc]]
    if spec in FIXED:
        method, reg, size = FIXED[spec]
        if not explicit:
            flags.append('SPEC_IMPLICIT')
        return dict(method=method, size=size, flags=flags, reg=reg)
    for name, method, default in METHODS:
        if spec.startswith(name):
            rest = spec[len(name):] or default
            if rest not in SIZES:
                raise DefError('bad operand %r' % spec)
            if method in ('OPM_X', 'OPM_Y'):
                flags.append('SPEC_IMPLICIT')
            return dict(method=method, size=SIZES[rest], flags=flags, reg='DEC_REG_NONE')
    raise DefError('unknown operand %r' % spec)


def parse_opcode(field):
    """'0F 01 /0 mem rm=1 p=66' -> (map, [opcodes], predicates, has_modrm)."""
    toks = field.split()
    esc = []
    while toks and toks[0] in ('0F', '38', '3A') and len(toks) > 1 and \
            re.fullmatch(r'[0-9A-F]{2}(\+r)?', toks[1]):
        esc.append(toks.pop(0))
    if tuple(esc) not in MAPS:
        raise DefError('bad map escape %r' % esc)
    op = toks.pop(0)
    m = re.fullmatch(r'([0-9A-F]{2})(\+r)?', op)
    if not m:
        raise DefError('bad opcode %r' % op)
    base = int(m.group(1), 16)
    opcodes = list(range(base, base + 8)) if m.group(2) else [base]
    pred = dict(pfx='PFX_ANY', reg='MATCH_ANY', rm='MATCH_ANY', mod='MOD_ANY', osz=0, asz=0)
    modrm = False
    for t in toks:
        if t == '/r':
            modrm = True
        elif re.fullmatch(r'/[0-7]', t):
            modrm, pred['reg'] = True, t[1]
        elif t in ('mem', 'reg'):
            pred['mod'] = 'MOD_MEM' if t == 'mem' else 'MOD_REG'
        elif t.startswith('rm='):
            pred['rm'] = t[3:]
        elif t.startswith('p='):
            pred['pfx'] = ' | '.join(PFX[p] for p in t[2:].split(','))
        elif t in ('o16', 'o32'):
            pred['osz'] = 2 if t == 'o16' else 4
        elif t in ('a16', 'a32'):
            pred['asz'] = 2 if t == 'a16' else 4
        else:
            raise DefError('bad qualifier %r' % t)
    return MAPS[tuple(esc)], opcodes, pred, modrm


def parse_attrs(field):
    out = dict(attr=[], cf='DEC_CF_NONE', stack=0, ud='DEC_UD_NONE', fr=[], fw=[])
    for t in field.split():
        if t in ATTRS:
            out['attr'].append(ATTRS[t])
        elif t.startswith('cf='):
            out['cf'] = CF[t[3:]]
        elif t == 'st=var':
            out['attr'].append('DEC_A_STACK_VAR')
            out['attr'].append('DEC_A_STACK')
        elif t.startswith('st='):
            out['stack'] = int(t[3:])
            out['attr'].append('DEC_A_STACK')
        elif t == 'unsup':
            out['ud'] = 'DEC_UD_UNSUPPORTED'
        elif t.startswith('fr=') or t.startswith('fw='):
            out[t[:2]] = [FLAGS[c] for c in t[3:]]
        else:
            raise DefError('bad attribute %r' % t)
    return out


def parse(path, mnemonics):
    rows = []  # (map, opcode, has_modrm, row-dict)
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            line = line.split('#', 1)[0].strip()
            if not line:
                continue
            try:
                fields = [x.strip() for x in line.split('|')]
                if len(fields) < 3:
                    raise DefError('need OPCODE | MNEMONIC | OPERANDS [| ATTRS]')
                mp, opcodes, pred, modrm = parse_opcode(fields[0])
                mnem = fields[1]
                if mnem not in mnemonics:
                    raise DefError('mnemonic %s missing from mnemonics.def' % mnem)
                ops = [] if fields[2] == '-' else [parse_operand(t) for t in fields[2].split(',')]
                if len(ops) > 4:
                    raise DefError('too many operands')
                methods = {o['method'] for o in ops}
                if methods & MODRM_METHODS and not modrm:
                    raise DefError('ModRM operand without /r or /N')
                if methods & MEM_ONLY:
                    pred['mod'] = 'MOD_MEM'
                if methods & REG_ONLY:
                    pred['mod'] = 'MOD_REG'
                attrs = parse_attrs(fields[3] if len(fields) > 3 else '')
            except (DefError, KeyError, ValueError) as e:
                sys.exit('%s:%d: %s' % (path, lineno, e))
            for op in opcodes:
                rows.append((mp, op, modrm, dict(mnem=mnem, pred=pred, ops=ops, **attrs)))
    return rows


def c_row(r):
    p = r['pred']
    ops = ', '.join('{ %s, %s, %s, %s }' % (o['method'], o['size'], ' | '.join(o['flags']), o['reg'])
                    for o in r['ops']) or '{ 0 }'
    return ('    { DEC_M_%s, %s, %s, %s, %s, %d, %d, %s, %d, %s, %d,\n'
            '      %s, %s, %s,\n      { %s } },'
            % (r['mnem'], p['pfx'], p['reg'], p['rm'], p['mod'], p['osz'], p['asz'], r['cf'],
               r['stack'], r['ud'], len(r['ops']), ' | '.join(r['attr']) or '0',
               ' | '.join(r['fr']) or '0', ' | '.join(r['fw']) or '0', ops))


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    with open(sys.argv[2]) as f:
        mnemonic_list = re.findall(r'^DEC_MNEMONIC\((\w+)\)', f.read(), re.M)
    mnemonics = set(mnemonic_list)
    rows = parse(sys.argv[1], mnemonics)
    by_op = {}
    for mp, op, modrm, r in rows:
        ent = by_op.setdefault((mp, op), [modrm, []])
        if ent[0] != modrm:
            sys.exit('%s: map %d opcode %02X: rows disagree on ModRM' % (sys.argv[1], mp, op))
        ent[1].append(r)
        if any(o['method'] == 'OPM_RF' for o in r['ops']):
            ent.append('OPI_MODRM_REG')
    out = ['/* build/bt/opcodes.c: generated by scripts/gen-opcodes.py from bt/opcodes.def.',
           ' * Generated, do not edit. */',
           '#include "bt/decode_tables.h"', '',
           'const struct dec_row dec_rows[] = {']
    index = {}
    n = 0
    for key in sorted(by_op):
        modrm, rs = by_op[key][:2]
        if len(rs) > 255:  # dec_opinfo.count is a uint8_t
            sys.exit('%s: map %d opcode %02X: more than 255 rows' % (sys.argv[1], key[0], key[1]))
        index[key] = (n, len(rs), ' | '.join(['OPI_MODRM'] * modrm + by_op[key][2:3]) or '0')
        out.append('    /* map %d, opcode %02X */' % key)
        out.extend(c_row(r) for r in rs)
        n += len(rs)
    if n > 0xFFFF:  # dec_opinfo.first is a uint16_t
        sys.exit('%s: more than 65535 rows' % sys.argv[1])
    out.append('};')
    out.append('const unsigned dec_row_count = %d;' % n)
    out.append('')
    out.append('const struct dec_opinfo dec_opinfo[DEC_MAP_COUNT][256] = {')
    for mp in range(4):
        out.append('    [%d] = {' % mp)
        for op in range(256):
            if (mp, op) in index:
                first, count, modrm = index[(mp, op)]
                out.append('        [0x%02X] = { %d, %d, %s },' % (op, first, count, modrm))
        out.append('    },')
    out.append('};')
    out.append('')
    out.append('const char *const dec_mnemonic_names[DEC_M_COUNT] = {')
    out.extend('    [DEC_M_%s] = "%s",' % (m, m.lower()) for m in mnemonic_list)
    out.append('};')
    with open(sys.argv[3], 'w') as f:
        f.write('\n'.join(out) + '\n')


if __name__ == '__main__':
    main()
