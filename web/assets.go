package web

import "embed"

// Assets are the page's files (HTML, JavaScript, CSS), embedded in the
// binary so that the page works with no network: no CDN, nothing fetched
// from elsewhere.
//
//go:embed assets
var Assets embed.FS
