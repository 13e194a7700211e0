// Candor protocol v1 over WebRTC: signaling on the WebSocket, one peer connection, the "events" data channel.
// Used by the interview room (candidate: sends mic + camera, hears the interviewer) and the observer view.

class LiveSession {
  constructor({ interviewId, role, localStream, onEvent, onTrack, onState, onError }) {
    Object.assign(this, { interviewId, role, localStream, onEvent, onTrack, onState, onError });
    this.events = [];
  }

  async start() {
    const { ice_servers } = await api("GET", "/rtc/config");
    this.pc = new RTCPeerConnection({ iceServers: ice_servers });
    if (this.role === "candidate") {
      for (const track of this.localStream.getAudioTracks()) this.pc.addTransceiver(track, { direction: "sendrecv" });
      for (const track of this.localStream.getVideoTracks()) this.pc.addTransceiver(track, { direction: "sendonly" });
    } else {
      this.pc.addTransceiver("audio", { direction: "recvonly" });
      this.pc.addTransceiver("audio", { direction: "recvonly" });
      this.pc.addTransceiver("video", { direction: "recvonly" });
    }
    this.channel = this.pc.createDataChannel("events", { ordered: true });
    this.channel.onmessage = (m) => {
      let event;
      try { event = JSON.parse(m.data); } catch { return; }
      this.events.push(event);
      this.onEvent?.(event);
    };
    this.pc.ontrack = (e) => this.onTrack?.(e);
    this.pc.onconnectionstatechange = () => this.onState?.(this.pc.connectionState);

    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const query = new URLSearchParams({ access_token: store.access, role: this.role });
    this.ws = new WebSocket(`${scheme}://${location.host}/api/v1/interviews/${this.interviewId}/rtc?${query}`);
    this.pc.onicecandidate = (e) => {
      if (e.candidate && this.ws.readyState === WebSocket.OPEN) {
        this.ws.send(JSON.stringify({ type: "candidate", candidate: e.candidate.toJSON() }));
      }
    };
    this.ws.onmessage = async (m) => {
      const message = JSON.parse(m.data);
      if (message.type === "answer") await this.pc.setRemoteDescription({ type: "answer", sdp: message.sdp });
      else if (message.type === "candidate" && message.candidate.candidate) await this.pc.addIceCandidate(message.candidate).catch(() => {});
      else if (message.type === "error") this.onError?.(message);
      else if (message.type === "ended") this.onState?.("ended", message.reason);
    };
    await new Promise((resolve, reject) => { this.ws.onopen = resolve; this.ws.onerror = reject; });
    const offer = await this.pc.createOffer();
    await this.pc.setLocalDescription(offer);
    this.ws.send(JSON.stringify({ type: "offer", sdp: offer.sdp }));
  }

  send(message) {
    if (this.channel?.readyState === "open") this.channel.send(JSON.stringify({ v: 1, ...message }));
  }

  end() {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ type: "end" }));
    setTimeout(() => { this.pc?.close(); this.ws?.close(); }, 200);
  }

  // Packets received per media kind, from getStats().
  async received() {
    const counts = { audio: 0, video: 0 };
    if (!this.pc) return counts;
    (await this.pc.getStats()).forEach((s) => { if (s.type === "inbound-rtp") counts[s.kind] += s.packetsReceived; });
    return counts;
  }
}
