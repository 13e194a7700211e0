// Live feedback shared by the interview room and the coach's view: meters, captions and cues from v1 events.
// `mountFeedback` builds the panel into a page's container (captions and the cue line too unless the page places
// its own elements with the same ids); `showFeedback` updates it from each event.
function mountFeedback(container, { candidate, captions = true }) {
  const meter = (label, id) => el("div", { class: "meter" }, el("span", { class: "muted" }, label), el("strong", { id }, "–"));
  const caption = (id, who, textId) =>
    el("p", { class: "caption", id }, el("span", { class: "who" }, who), el("span", { id: textId, class: "muted" }, "…"));
  container.append(...[
    el("div", { class: "meters" },
      meter("Volume", "volume"), meter("Pace", "wpm"), meter("Video", "video"),
      meter("Eye contact", "eye-contact"), meter("Expression", "expression")),
    captions && el("div", { class: "captions", "aria-live": "polite" },
      caption("interviewer-caption", "Interviewer", "interviewer-text"),
      caption("you-caption", candidate, "you-text")),
    captions && el("p", { id: "cue", class: "cue", role: "status", "aria-live": "polite" }),
  ].filter(Boolean));
}

function showFeedback(event) {
  const set = (id, text, muted) => {
    const node = document.getElementById(id);
    if (!node) return;
    node.textContent = text;
    if (muted !== undefined) node.classList.toggle("muted", muted);
  };
  if (event.type === "speech.metrics") {
    if (event.volume_dbfs != null) set("volume", `${event.volume_dbfs.toFixed(0)} dBFS`);
    if (event.wpm != null) set("wpm", `${Math.round(event.wpm)} wpm`);
  } else if (event.type === "vision.metrics") {
    if (event.frame_width) set("video", `${event.frame_width}×${event.frame_height} @ ${event.fps}`);
    if (event.face === false) { set("eye-contact", "no face"); set("expression", "–"); }
    if (event.eye_contact != null) set("eye-contact", `${Math.round(event.eye_contact * 100)}%`);
    if (event.expression) set("expression", Object.entries(event.expression).sort((a, b) => b[1] - a[1])[0][0]);
  } else if (event.type === "interviewer.speech") {
    set("interviewer-text", event.text, false);
    document.getElementById("interviewer-caption")?.classList.toggle("speaking", event.phase === "start");
  } else if (event.type === "transcript.partial" || event.type === "transcript.final") {
    set("you-text", event.text, event.type === "transcript.partial");
  } else if (event.type === "cue") {
    // One cue at a time, fading after a few seconds (the server sends them sparsely).
    const cue = document.getElementById("cue");
    if (!cue) return;
    cue.textContent = event.text;
    cue.classList.remove("show");
    void cue.offsetWidth;  // restarts the fade
    cue.classList.add("show");
  }
}
