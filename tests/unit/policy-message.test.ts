import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { configSchema } from '@cms/config';
import { clearMessage, compilePolicy, desiredMessage } from '@cms/policy';

const defaults = configSchema.shape.policy.parse({});

describe('desiredMessage', () => {
  test('shows "Security Level N" at the bottom, permanently, by default', () => {
    for (const level of [1, 2, 3] as const) {
      assert.deepEqual(desiredMessage(level, defaults), {
        messageText: `Security Level ${level}`,
        messagePosition: 'bottom',
        messageDuration: 'permanent',
      });
    }
  });

  test('clears the message when the meeting has no level', () => {
    assert.deepEqual(desiredMessage(null, defaults), { messageText: '', messageDuration: '0' });
  });

  test('clears without naming a position, so CMS keeps its own', () => {
    assert.equal('messagePosition' in desiredMessage(null, defaults), false);
  });

  test('uses the configured text, position and duration in seconds, as strings', () => {
    const config = configSchema.shape.policy.parse({
      messages: { 3: { text: 'EXTERNAL participants present', position: 'top', duration: 30 } },
    });
    assert.deepEqual(desiredMessage(3, config), {
      messageText: 'EXTERNAL participants present',
      messagePosition: 'top',
      messageDuration: '30',
    });
  });

  test('keeps the defaults for levels the configuration does not mention', () => {
    const config = configSchema.shape.policy.parse({ messages: { 3: { text: 'External' } } });
    assert.deepEqual(desiredMessage(1, config), {
      messageText: 'Security Level 1',
      messagePosition: 'bottom',
      messageDuration: 'permanent',
    });
    assert.deepEqual(desiredMessage(3, config), { messageText: 'External', messagePosition: 'bottom', messageDuration: 'permanent' });
  });

  test('accepts a compiled policy as well as the config block', () => {
    const config = configSchema.shape.policy.parse({ messages: { 2: { text: 'Internal', position: 'middle' } } });
    assert.deepEqual(desiredMessage(2, compilePolicy(config)), desiredMessage(2, config));
    assert.equal(desiredMessage(2, compilePolicy(config)).messageText, 'Internal');
  });
});

describe('clearMessage', () => {
  test('is the form CMS documents for clearing: messageText=&messageDuration=0', () => {
    assert.deepEqual(clearMessage(), { messageText: '', messageDuration: '0' });
  });

  test('returns a fresh object each time so callers cannot corrupt it', () => {
    const first = clearMessage() as { messageText: string };
    first.messageText = 'changed';
    assert.equal(clearMessage().messageText, '');
  });
});
