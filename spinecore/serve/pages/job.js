"use strict";
// The job page: poll GET /api/jobs/{id} until the job ends, then show its results.
const jobId = decodeURIComponent(window.location.pathname.split("/").pop());
const api = `/api/jobs/${encodeURIComponent(jobId)}`;
const POLL_MS = 1000;
const TOP_LEVEL_DOWNLOADS = ["gradings.csv", "gradings.json", "vertebrae.json", "overview.png", "seg.dcm", "sr.dcm"];

const fileUrl = name => `${api}/files/${name.split("/").map(encodeURIComponent).join("/")}`;
const element = (tag, text, className) => {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
};

async function poll() {
  let state;
  try {
    const answer = await fetch(api, { cache: "no-store" });
    if (answer.status === 404) return showStatus("No such job: it was deleted or has expired.");
    state = await answer.json();
  } catch (error) {
    showStatus("The server cannot be reached; retrying…");
    return setTimeout(poll, POLL_MS * 3);
  }
  document.getElementById("job-name").textContent = state.name;
  document.getElementById("job-progress").value = state.progress;
  if (state.status === "queued") {
    showStatus(`Queued: number ${state.queue_position} in line.`);
  } else if (state.status === "running") {
    showStatus(`Running: ${state.message} (${Math.round(state.progress * 100)} %).`);
  } else if (state.status === "failed") {
    showStatus("Failed.");
    document.getElementById("job-error").textContent = state.error;
    document.getElementById("job-progress").hidden = true;
    return;
  } else {
    showStatus("Done.");
    document.getElementById("job-progress").hidden = true;
    return showResults(state.files);
  }
  setTimeout(poll, POLL_MS);
}

function showStatus(text) {
  document.getElementById("status").textContent = text;
}

async function showResults(files) {
  document.getElementById("overview").src = fileUrl("overview.png");
  const gradings = await (await fetch(fileUrl("gradings.json"))).json();
  fillTable(gradings);
  setUpViewer(files.filter(name => name.startsWith("slices/")).sort());
  const montages = files.filter(name => name.startsWith("hotspots/") && name.endsWith(".png"));
  if (montages.length) {
    document.getElementById("hotspot-section").hidden = false;
    const holder = document.getElementById("hotspots");
    montages.forEach(name => {
      holder.append(element("h3", name.slice("hotspots/".length, -".png".length)));
      const image = element("img");
      image.src = fileUrl(name);
      image.alt = `hotspots of ${name}`;
      holder.append(image);
    });
  }
  const list = document.getElementById("downloads");
  TOP_LEVEL_DOWNLOADS.filter(name => files.includes(name)).forEach(name => {
    const link = element("a", name);
    link.href = fileUrl(name);
    link.download = name;
    const item = element("li");
    item.append(link);
    list.append(item);
  });
  document.getElementById("results").hidden = false;
}

function fillTable(gradings) {
  const tasks = gradings.scheme.tasks.map(task => task.name);
  const head = element("tr");
  ["Level", ...tasks, "QC flags"].forEach(name => head.append(element("th", name)));
  document.querySelector("#gradings thead").append(head);
  const body = document.querySelector("#gradings tbody");
  gradings.discs.forEach(disc => {
    const row = element("tr");
    row.append(element("th", disc.level));
    tasks.forEach(task => {
      const graded = disc.tasks[task];
      row.append(element("td", `${graded.grade} (${Math.round(graded.confidence * 100)} %)`));
    });
    row.append(element("td", disc.flags.join(", "), disc.flags.length ? "flagged" : undefined));
    body.append(row);
  });
}

function setUpViewer(slices) {
  const slider = document.getElementById("slice-slider");
  const image = document.getElementById("slice-image");
  const label = document.getElementById("slice-label");
  const show = () => {
    image.src = fileUrl(slices[slider.value]);
    label.textContent = `slice ${Number(slider.value) + 1} of ${slices.length}`;
  };
  slider.max = slices.length - 1;
  slider.value = Math.floor(slices.length / 2);
  slider.addEventListener("input", show);
  show();
}

document.getElementById("delete-button").addEventListener("click", async () => {
  await fetch(api, { method: "DELETE" });
  window.location.assign("/");
});

poll();
