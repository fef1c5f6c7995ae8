import {ReplError} from '../errors.js'

/**
 * synchronous_standby_names as PostgreSQL parses it (src/backend/replication/syncrep_scanner.l
 * and syncrep_gram.y): `FIRST n (a, b)` and `n (a, b)` ask for the n highest-priority standbys
 * (priority is list order), `ANY n (a, b, c)` for a quorum of any n, and a bare list `a, b`
 * means `FIRST 1 (a, b)`. Names are identifiers, numbers, `*` (any standby) or double-quoted
 * (`""` for a quote); they match application_name case-insensitively. FIRST and ANY are
 * keywords in any case. Empty means asynchronous replication.
 */
export interface SyncStandbyConfig {
  method: 'priority' | 'quorum'
  num: number
  names: string[]
}

type Token = {kind: 'name' | 'num' | 'any' | 'first' | '(' | ')' | ','; text: string}

export function parseSyncStandbyNames(value: string): SyncStandbyConfig | null {
  if (value.trim() === '') return null
  const tokens = tokenize(value)
  let i = 0
  const peek = () => tokens[i]
  const fail = (): never => {
    throw new ReplError('INVALID_DATA', `Cannot parse synchronous_standby_names "${value}": syntax error`)
  }
  const expect = (kind: Token['kind']): Token => (peek()?.kind === kind ? tokens[i++]! : fail())
  const list = (): string[] => {
    const names: string[] = []
    for (;;) {
      const t = peek()
      if (t?.kind !== 'name' && t?.kind !== 'num') fail()
      names.push(tokens[i++]!.text)
      if (peek()?.kind !== ',') return names
      i++
    }
  }
  let config: SyncStandbyConfig
  const first = peek()
  if (first?.kind === 'any' || first?.kind === 'first') {
    i++
    const num = Number(expect('num').text)
    expect('(')
    const names = list()
    expect(')')
    config = {method: first.kind === 'any' ? 'quorum' : 'priority', num, names}
  } else if (first?.kind === 'num' && tokens[i + 1]?.kind === '(') {
    i++
    expect('(')
    const names = list()
    expect(')')
    config = {method: 'priority', num: Number(first.text), names}
  } else {
    config = {method: 'priority', num: 1, names: list()}
  }
  if (i !== tokens.length) fail()
  if (config.num <= 0) throw new ReplError('INVALID_DATA', `Cannot parse synchronous_standby_names "${value}": number of synchronous standbys (${config.num}) must be greater than zero`)
  return config
}

function tokenize(value: string): Token[] {
  const tokens: Token[] = []
  let i = 0
  while (i < value.length) {
    const c = value[i]!
    if (/[ \t\n\r\f\v]/.test(c)) {
      i++
    } else if (c === '"') {
      let text = ''
      i++
      for (;;) {
        if (i >= value.length) throw new ReplError('INVALID_DATA', `Cannot parse synchronous_standby_names "${value}": unterminated quoted identifier`)
        if (value[i] === '"') {
          if (value[i + 1] === '"') {
            text += '"'
            i += 2
            continue
          }
          i++
          break
        }
        text += value[i++]
      }
      tokens.push({kind: 'name', text})
    } else if (c === '(' || c === ')' || c === ',') {
      tokens.push({kind: c, text: c})
      i++
    } else if (c === '*') {
      tokens.push({kind: 'name', text: '*'})
      i++
    } else if (/[0-9]/.test(c)) {
      const m = /^[0-9]+/.exec(value.slice(i))!
      tokens.push({kind: 'num', text: m[0]})
      i += m[0].length
    } else if (/[A-Za-z_\u0080-\uffff]/.test(c)) {
      const m = /^[A-Za-z_\u0080-\uffff][A-Za-z_\u0080-\uffff0-9$]*/.exec(value.slice(i))!
      const lower = m[0].toLowerCase()
      tokens.push({kind: lower === 'any' ? 'any' : lower === 'first' ? 'first' : 'name', text: m[0]})
      i += m[0].length
    } else {
      throw new ReplError('INVALID_DATA', `Cannot parse synchronous_standby_names "${value}": syntax error at "${c}"`)
    }
  }
  return tokens
}

/** Whether a listed name stands for this application_name (`*` matches any), as syncrep.c compares. */
export function matchesStandbyName(listed: string, applicationName: string): boolean {
  return listed === '*' || listed.toLowerCase() === applicationName.toLowerCase()
}
