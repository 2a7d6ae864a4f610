import { DateTime, IANAZone } from 'luxon';
import { addZonedDays, zoneOffset } from './zone-offsets';

/** Zones with summer time north and south, at midnight (Santiago), by 30 minutes (Lord Howe), at :45 (Chatham). */
const ZONES = [
  'America/New_York',
  'Europe/London',
  'America/Santiago',
  'Australia/Lord_Howe',
  'Pacific/Chatham',
  'Asia/Kathmandu',
  'America/Sao_Paulo',
  'Europe/Berlin',
];

/** A deterministic spread of instants (no Math.random: a failure reruns the same). */
function* instants(count: number): Generator<number> {
  let x = 123_456_789;
  const from = Date.UTC(2015, 0, 1);
  const span = Date.UTC(2035, 0, 1) - from;
  for (let i = 0; i < count; i++) {
    x = (x * 1_103_515_245 + 12_345) % 2 ** 31;
    yield from + Math.floor((x / 2 ** 31) * span);
  }
}

describe('zone offsets kept per year', () => {
  it('are luxon’s offsets at any instant, and at each side of every change', () => {
    for (const zone of ZONES) {
      const iana = IANAZone.create(zone);
      for (const ts of instants(400)) expect([zone, ts, zoneOffset(zone, ts)]).toEqual([zone, ts, iana.offset(ts)]);
      // Around the changes of 2027: a minute before, at, and a minute after each.
      for (let at = Date.UTC(2027, 0, 1); at < Date.UTC(2028, 0, 1); at += 3_600_000)
        if (iana.offset(at) !== iana.offset(at + 3_600_000))
          for (let ts = at; ts <= at + 3_600_000; ts += 60_000)
            expect([zone, ts, zoneOffset(zone, ts)]).toEqual([zone, ts, iana.offset(ts)]);
    }
  });

  it('move an instant by calendar days exactly as luxon’s plus({ days }) does, across summer time and its gaps', () => {
    for (const zone of ZONES) {
      let k = 0;
      for (const ts of instants(300)) {
        const days = ((k++ * 37) % 801) - 400;
        expect([zone, ts, days, addZonedDays(ts, days, zone)]).toEqual([
          zone,
          ts,
          days,
          DateTime.fromMillis(ts, { zone }).plus({ days }).toMillis(),
        ]);
      }
      // Wall-clock times the spring change skips and the autumn one repeats: from each hour of the days around them.
      const iana = IANAZone.create(zone);
      for (let at = Date.UTC(2027, 0, 1); at < Date.UTC(2028, 0, 1); at += 3_600_000)
        if (iana.offset(at) !== iana.offset(at + 3_600_000))
          for (let from = at - 2 * 86_400_000; from <= at + 86_400_000; from += 1_800_000)
            for (const days of [1, 2, 7, -1, -7])
              expect(addZonedDays(from, days, zone)).toBe(
                DateTime.fromMillis(from, { zone }).plus({ days }).toMillis(),
              );
    }
  });
});
