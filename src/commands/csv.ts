import { Args, Flags } from '@oclif/core'

import { importCsvWithRuntime } from '../lib/app/csv/run-import.js'
import { BaseCommand } from '../lib/cli/base-command.js'
import { renderCsvImport, withCsvProgress } from '../lib/cli/render-csv.js'

export default class Csv extends BaseCommand<typeof Csv> {
  static override summary = 'Backfill readings or data points from a CSV file (long or wide format), resumable'
  static override description = 'IoT (--domain iot, the default): sensor_id (or device_uuid and sensor_uuid), timestamp, value [, sequence]. Universal (--domain D --source-id S): stream_id (or series_id), timestamp, value; or wide with --value-columns. Rows are stored with their own time, exempt from the age window, without alerts or rule-state movement unless --alerts. Progress is checkpointed: re-running the same command resumes; re-running a finished file stores nothing new. Bad lines are reported (line, column, reason) and written to the rejects file; exit 1 if any line was rejected unless --allow-rejects.'
  static override examples = [
    '<%= config.bin %> csv ./boiler-2024.csv',
    '<%= config.bin %> csv ./feed.csv --domain finance --source-id nyse --timestamp-column time --value-columns open,close --stream-id-prefix px_',
    'gunzip -c old.csv.gz | <%= config.bin %> csv - --alerts --json',
  ]
  static override args = { file: Args.string({ description: 'the CSV file, or - for stdin', required: true }) }
  static override flags = {
    domain: Flags.string({ description: 'iot, or a universal domain', default: 'iot' }),
    'source-id': Flags.string({ description: 'universal: the source of every row' }),
    'timestamp-column': Flags.string({ description: 'the time column (default timestamp): ISO-8601 (no zone = UTC) or epoch seconds' }),
    'value-columns': Flags.string({ description: 'wide format: the value columns, comma-separated (one stream each)' }),
    'stream-id-prefix': Flags.string({ description: 'wide format: stream id = prefix + column name', default: '' }),
    delimiter: Flags.string({ description: 'field delimiter', default: ',' }),
    alerts: Flags.boolean({ description: 'raise alerts and move rule state, in time order per sensor/series (late readings move nothing)', default: false }),
    'dry-run': Flags.boolean({ description: 'validate and report; write nothing', default: false }),
    'max-errors': Flags.integer({ description: 'stop reading after this many rejected lines (what was read is still stored)', min: 1 }),
    rejects: Flags.string({ description: 'the rejects file (default: <file>.rejects.csv next to the input)' }),
    'allow-rejects': Flags.boolean({ description: 'exit 0 even when lines were rejected', default: false }),
    restart: Flags.boolean({ description: 'ignore the checkpoint of an earlier run and read from the first row (stored rows stay stored)', default: false }),
  }

  async run() {
    const f = this.flags
    const file = this.args.file
    const ctx = await this.context()
    const options = {
      input: file === '-' ? ({ kind: 'stream', stream: process.stdin, name: 'stdin' } as const) : ({ kind: 'file', path: file } as const),
      format: { domain: f.domain, sourceId: f['source-id'], timestampColumn: f['timestamp-column'], valueColumns: f['value-columns']?.split(',').filter((c) => c.trim() !== ''), streamIdPrefix: f['stream-id-prefix'] },
      delimiter: f.delimiter,
      alerts: f.alerts,
      dryRun: f['dry-run'],
      maxErrors: f['max-errors'],
      rejectsPath: f.rejects,
      restart: f.restart,
    }
    const result = await withCsvProgress(`ingest csv ${file}`, { json: this.jsonEnabled(), tty: process.stdout.isTTY === true }, (onProgress) => importCsvWithRuntime(ctx, options, onProgress))
    this.print(renderCsvImport(result))
    // Exit 1 when a line was rejected, after the summary (--json prints the result once, as usual).
    if (result.rejected > 0 && !f['allow-rejects']) process.exitCode = 1
    return result
  }
}
