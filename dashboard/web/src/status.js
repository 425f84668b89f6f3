// The status classes of API usage, the one place that names them: the
// stacked chart's legend, the tables' columns and the CSV headers all read
// their names here, so that a class is called the same wherever it shows.
// The classes split a row's requests without overlap (they stack): the
// API's Status400 counts 429 too, so 4xx is shown without its 429s.
// Each color has at least 4.5:1 contrast against white, so that bars and
// legend read without color vision too (the tables carry the same numbers).
export const STATUS = [
  { key: 'status200', label: '2xx', color: '#1b7f3b', value: (r) => r.status200 },
  { key: 'status300', label: '3xx', color: '#1f5fb4', value: (r) => r.status300 },
  { key: 'other400', label: '4xx except 429', color: '#a35200', value: (r) => r.status400 - r.status429 },
  { key: 'status429', label: '429', color: '#7b2fa8', value: (r) => r.status429 },
  { key: 'status500', label: '5xx', color: '#c0262d', value: (r) => r.status500 },
  // Whatever no class of the API covers: informational answers.
  { key: 'other', label: '1xx', color: '#5f6b76', value: (r) => r.requests - r.status200 - r.status300 - r.status400 - r.status500 },
];
