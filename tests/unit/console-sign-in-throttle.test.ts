/** The console's brake on token guessing: ten refused sign-ins a minute per address, then 429 until the minute ends. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SignInThrottle } from '../../services/records-api/src/console/sign-in-throttle.ts';

test('ten refusals within a minute hold that address, not others, until the minute ends', () => {
  const throttle = new SignInThrottle();
  const t0 = 1_000_000;
  for (let i = 0; i < 9; i++) throttle.failed('10.0.0.1', t0 + i);
  assert.equal(throttle.retryAfter('10.0.0.1', t0 + 10), 0, 'nine refusals: may still try');
  throttle.failed('10.0.0.1', t0 + 10);
  assert.equal(throttle.retryAfter('10.0.0.1', t0 + 10), 60, 'the tenth: wait for the rest of the minute');
  assert.equal(throttle.retryAfter('10.0.0.2', t0 + 10), 0, 'another address is not held');
  assert.equal(throttle.retryAfter('10.0.0.1', t0 + 30_000), 30);
  assert.equal(throttle.retryAfter('10.0.0.1', t0 + 60_000), 0, 'a new minute');
});

test('a successful sign-in clears the count', () => {
  const throttle = new SignInThrottle();
  for (let i = 0; i < 9; i++) throttle.failed('10.0.0.1', 5);
  throttle.succeeded('10.0.0.1');
  throttle.failed('10.0.0.1', 6);
  assert.equal(throttle.retryAfter('10.0.0.1', 7), 0);
});
