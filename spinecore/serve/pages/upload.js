"use strict";
// The upload page: choose or drop a study, send it to POST /api/jobs, then go to its job page.
const form = document.getElementById("upload-form");
const input = document.getElementById("file-input");
const zone = document.getElementById("drop-zone");
const button = document.getElementById("upload-button");
const bar = document.getElementById("upload-progress");
const errorLine = document.getElementById("upload-error");
let chosen = null;

function choose(file) {
  chosen = file || null;
  document.getElementById("chosen-file").textContent = chosen ? `${chosen.name} (${(chosen.size / 1048576).toFixed(1)} MB)` : "";
  button.disabled = !chosen;
  errorLine.textContent = "";
}

input.addEventListener("change", () => choose(input.files[0]));
["dragenter", "dragover"].forEach(name => zone.addEventListener(name, event => {
  event.preventDefault();
  zone.classList.add("dragging");
}));
["dragleave", "drop"].forEach(name => zone.addEventListener(name, () => zone.classList.remove("dragging")));
zone.addEventListener("drop", event => {
  event.preventDefault();
  choose(event.dataTransfer.files[0]);
});

form.addEventListener("submit", event => {
  event.preventDefault();
  if (!chosen) return;
  const body = new FormData();
  body.append("file", chosen, chosen.name);
  body.append("tta", document.getElementById("tta").checked);
  body.append("hotspots", document.getElementById("hotspots").checked);
  const request = new XMLHttpRequest();
  request.open("POST", "/api/jobs");
  request.upload.addEventListener("progress", e => { if (e.lengthComputable) bar.value = e.loaded / e.total; });
  request.addEventListener("load", () => {
    let answer = {};
    try { answer = JSON.parse(request.responseText); } catch (ignored) { /* not JSON: use the status line */ }
    if (request.status === 202) {
      window.location.assign(`/jobs/${encodeURIComponent(answer.id)}`);
    } else {
      failed(answer.detail || `the server answered ${request.status} ${request.statusText}`);
    }
  });
  request.addEventListener("error", () => failed("the upload did not reach the server"));
  button.disabled = true;
  bar.hidden = false;
  request.send(body);
});

function failed(reason) {
  errorLine.textContent = `Upload failed: ${reason}`;
  bar.hidden = true;
  button.disabled = !chosen;
}
