/**
 * The pure helpers the actuator decides its writes with (libs/cms/src/message-on-screen.ts): whether a desired
 * message clears, the PUT fields for it, and whether CMS already shows it. A PUT that was not needed costs one
 * write; a skipped PUT that was needed leaves a wrong level on screen. So when it is unclear what CMS shows,
 * the answer is "not shown as desired": write.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type CmsCall, callMessageUpdate, callMessageVisible, callShowsMessage, type DesiredCallMessage, isClearMessage } from '@cms/cms';

const level3: DesiredCallMessage = { messageText: 'Security Level 3', messagePosition: 'bottom', messageDuration: 'permanent' };
const clear: DesiredCallMessage = { messageText: '', messagePosition: null, messageDuration: '0' };
const showing = (fields: Partial<CmsCall> = {}): CmsCall => ({
  id: 'call-1',
  messageText: 'Security Level 3',
  messagePosition: 'bottom',
  messageDuration: 'permanent',
  ...fields,
});
const blank = (fields: Partial<CmsCall> = {}): CmsCall => ({ id: 'call-1', messageText: '', messageDuration: '0', ...fields });

describe('isClearMessage', () => {
  test('empty text or a zero duration (however written) clears', () => {
    assert.equal(isClearMessage(clear), true);
    assert.equal(isClearMessage({ ...level3, messageText: '' }), true);
    for (const duration of ['0', '00', ' 0 ']) assert.equal(isClearMessage({ ...level3, messageDuration: duration }), true, duration);
  });

  test('a text with a duration shows', () => {
    assert.equal(isClearMessage(level3), false);
    assert.equal(isClearMessage({ ...level3, messageDuration: '30' }), false);
  });
});

describe('callMessageUpdate', () => {
  test('clearing is messageText=&messageDuration=0, whatever else the desired state holds', () => {
    assert.deepEqual(callMessageUpdate(clear), { messageText: '', messageDuration: 0 });
    assert.deepEqual(callMessageUpdate({ ...level3, messageDuration: '0' }), { messageText: '', messageDuration: 0 });
  });

  test('showing sends text, position and duration', () => {
    assert.deepEqual(callMessageUpdate(level3), {
      messageText: 'Security Level 3',
      messagePosition: 'bottom',
      messageDuration: 'permanent',
    });
  });

  test('a duration in seconds is sent without padding', () => {
    assert.deepEqual(callMessageUpdate({ ...level3, messageDuration: ' 030 ' }).messageDuration, '30');
  });

  test('no position leaves CMS its own', () => {
    assert.equal('messagePosition' in callMessageUpdate({ ...level3, messagePosition: null }), false);
  });
});

describe('callMessageVisible', () => {
  test('a permanent message with text is visible', () => {
    assert.equal(callMessageVisible(showing()), true);
  });

  test('no text, or a zero duration, is not visible', () => {
    assert.equal(callMessageVisible(blank()), false);
    assert.equal(callMessageVisible(showing({ messageText: '' })), false);
    assert.equal(callMessageVisible(showing({ messageText: undefined })), false);
    assert.equal(callMessageVisible(showing({ messageDuration: '0' })), false);
  });

  test('a text without a duration (CMS did not say) counts as visible: it may be showing', () => {
    assert.equal(callMessageVisible(showing({ messageDuration: undefined })), true);
    assert.equal(callMessageVisible(showing({ messageDuration: '' })), true);
  });

  test('a timed message is visible while time remains, and when CMS does not say how much remains', () => {
    assert.equal(callMessageVisible(showing({ messageDuration: '30', messageTimeRemaining: '12' })), true);
    assert.equal(callMessageVisible(showing({ messageDuration: '30' })), true);
    assert.equal(callMessageVisible(showing({ messageDuration: '30', messageTimeRemaining: '0' })), false);
  });
});

describe('callShowsMessage', () => {
  test('CMS showing exactly the desired message needs no write', () => {
    assert.equal(callShowsMessage(showing(), level3), true);
    assert.equal(callShowsMessage(showing({ messageDuration: '030' }), { ...level3, messageDuration: '30' }), true);
  });

  test('another text, duration or position needs a write', () => {
    assert.equal(callShowsMessage(showing({ messageText: 'Security Level 1' }), level3), false);
    assert.equal(callShowsMessage(showing({ messageDuration: '30' }), level3), false);
    assert.equal(callShowsMessage(showing({ messagePosition: 'top' }), level3), false);
  });

  test('a desired message without a position matches whatever position CMS shows it in', () => {
    assert.equal(callShowsMessage(showing({ messagePosition: 'top' }), { ...level3, messagePosition: null }), true);
  });

  test('a timed message that has run out is written again', () => {
    const timed = { ...level3, messageDuration: '30' };
    assert.equal(callShowsMessage(showing({ messageDuration: '30', messageTimeRemaining: '5' }), timed), true);
    assert.equal(callShowsMessage(showing({ messageDuration: '30', messageTimeRemaining: '0' }), timed), false);
  });

  test('nothing shown and nothing desired needs no write', () => {
    assert.equal(callShowsMessage(blank(), clear), true);
    assert.equal(callShowsMessage({ id: 'call-1' }, clear), true);
    assert.equal(callShowsMessage(showing({ messageDuration: '30', messageTimeRemaining: '0' }), clear), true);
  });

  test('a message shown where none is desired is cleared', () => {
    assert.equal(callShowsMessage(showing(), clear), false);
  });

  test('a CMS answer without messageDuration: the desired message is written', () => {
    assert.equal(callShowsMessage(showing({ messageDuration: undefined }), level3), false);
  });

  test('a CMS answer with a text but without messageDuration: the clear is written (it may be showing)', () => {
    assert.equal(callShowsMessage(showing({ messageDuration: undefined }), clear), false);
  });
});
