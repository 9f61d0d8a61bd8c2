import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { tokenMatcher, tokenMatches } from '@cms/http';

describe('tokenMatcher (the expected token hashed once, for a check on every request)', () => {
  const expected = 'ingest-token-0123456789';
  const matches = tokenMatcher(expected);

  test('accepts exactly the expected token', () => {
    assert.equal(matches(expected), true);
  });

  test('refuses no token, an empty one, a prefix, a longer one and one differing in a character or in case', () => {
    for (const presented of [undefined, '', 'ingest-token-012345678', `${expected}0`, 'ingest-token-0123456788', expected.toUpperCase()]) {
      assert.equal(matches(presented), false, String(presented));
    }
  });

  test('answers as tokenMatches does, call after call', () => {
    for (const presented of [expected, 'other', undefined, expected, '']) {
      assert.equal(matches(presented), tokenMatches(presented, expected), String(presented));
    }
  });
});
