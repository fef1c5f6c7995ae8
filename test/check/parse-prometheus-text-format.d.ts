/** The npm package ships no types: its documented output shape. */
declare module 'parse-prometheus-text-format' {
  export interface ParsedSample {
    value: string
    labels?: Record<string, string>
  }
  export interface ParsedFamily {
    name: string
    help: string
    type: 'GAUGE' | 'COUNTER' | 'SUMMARY' | 'HISTOGRAM' | 'UNTYPED'
    metrics: ParsedSample[]
  }
  export default function parsePrometheusTextFormat(text: string): ParsedFamily[]
}
