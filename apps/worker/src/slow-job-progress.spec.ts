import { slowJobProgress } from './slow-job-progress';

describe('slowJobProgress', () => {
  afterEach(() => jest.useRealTimers());

  it('a fast job writes no progress at all (each report is a Redis round trip)', async () => {
    const job = { updateProgress: jest.fn(() => Promise.resolve()) };
    const progress = slowJobProgress(job, 250);
    await progress.step(20);
    await progress.step(50);
    await progress.done();
    expect(job.updateProgress).not.toHaveBeenCalled();
  });

  it('a slow job reports every step from the moment it is slow, and ends at 100', async () => {
    jest.useFakeTimers({ now: 0 });
    const job = { updateProgress: jest.fn(() => Promise.resolve()) };
    const progress = slowJobProgress(job, 250);
    await progress.step(20);
    jest.setSystemTime(300);
    await progress.step(50);
    await progress.step(90);
    await progress.done();
    expect(job.updateProgress.mock.calls).toEqual([[50], [90], [100]]);
  });
});
