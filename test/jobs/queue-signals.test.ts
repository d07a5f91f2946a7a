// The queue notification's payload (migrations/0003_shared_queue.sql's trigger: status:id:owner).
import { describe, expect, it } from 'vitest';
import { parseChange } from '../../src/jobs/queue-signals.ts';

describe('a queue notification', () => {
  it('names the status, the job and its owner, whose id may itself hold colons', () => {
    expect(parseChange('running:job-1:host:1234:ab')).toEqual({
      status: 'running',
      jobId: 'job-1',
      owner: 'host:1234:ab',
    });
    expect(parseChange('queued:job-2:')).toEqual({ status: 'queued', jobId: 'job-2', owner: '' });
    expect(parseChange('garbage')).toBeUndefined();
  });
});
