import test from 'ava'

import {quoteIdentifier, quoteLiteral} from '../../src/core/pg/quote.js'

test('a literal doubles its quotes and nothing else', (t) => {
  t.is(quoteLiteral('backup'), "'backup'")
  t.is(quoteLiteral("it's"), "'it''s'")
  t.is(quoteLiteral(''), "''")
})

test('backslashes stay as they are: repl_scanner.l has no escapes, nor has SQL under standard_conforming_strings', (t) => {
  t.is(quoteLiteral('C:\\backup\\'), "'C:\\backup\\'")
  t.false(quoteLiteral('a\\b').startsWith('E'), "E'' is not valid in replication commands")
})

test('an identifier is always quoted, so a keyword or a capital survives', (t) => {
  t.is(quoteIdentifier('slot'), '"slot"')
  t.is(quoteIdentifier('physical'), '"physical"')
  t.is(quoteIdentifier('MySlot'), '"MySlot"')
  t.is(quoteIdentifier('a"b'), '"a""b"')
})
