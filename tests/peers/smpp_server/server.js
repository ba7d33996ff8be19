// A real SMPP 3.4 SMSC for passpost's tests and benchmark, built on the npm `smpp` package.
//
//   node server.js [--port 0] [--admin-port 0] [--journal FILE] [--rules JSON]
//                  [--system-id ID --password PW] [--no-receipts] [--no-record]
//
// Prints one JSON line {"smpp": port, "admin": port} once listening.
// - Accepts bind_transceiver/transmitter (checks credentials when given), answers
//   enquire_link and unbind, and answers every submit_sm with a unique message id.
// - Sends a delivery receipt (deliver_sm, esm_class 0x04, "id:… stat:…" text plus the
//   receipted_message_id and message_state TLVs) for each accepted submit_sm that asks
//   for one (registered_delivery & 1).
// - Rules, matched by destination prefix (first match wins), control the outcome:
//     {"prefix": "4499", "status": 11}              always answer this command_status
//     {"prefix": "4488", "status": 88, "times": 2}  this status for the first 2 tries per number
//     {"prefix": "4477", "stat": "UNDELIV"}         accept, but the receipt says UNDELIV
//     {"prefix": "4466", "tlvs": false}             receipt carries only the text form
//     {"prefix": "4455", "receipt": false}          accept, send no receipt
//     {"prefix": "4433", "delay": 50}               answer submit_sm after 50 ms
//     {"prefix": "4411", "receipt_delay": 500}      send the receipt 500 ms after the answer
//   A receipt whose deliver_sm_resp carries an error status is sent again (up to 3 times).
// - Records every accepted submit_sm: appended as a JSON line to the journal (survives a
//   kill -9) and kept in memory for GET /messages.
// Admin HTTP (JSON): GET /messages, GET /stats, POST /rules (body: list), POST /reset,
//   POST /drop (destroy every session: the clients must re-bind), POST /enquire (send an
//   enquire_link on every session; stats.enquireLinkResps counts the answers), POST /hang
//   (stop reading from every open session: a hung SMSC whose TCP connection stays up).
'use strict';

const http = require('http');
const fs = require('fs');
const smpp = require('smpp');

function parseArgs(argv) {
	const args = { port: 0, adminPort: 0, journal: null, rules: [], systemId: null, password: null, receipts: true, record: true };
	for (let i = 2; i < argv.length; i++) {
		const key = argv[i];
		const value = () => argv[++i];
		if (key === '--port') args.port = Number(value());
		else if (key === '--admin-port') args.adminPort = Number(value());
		else if (key === '--journal') args.journal = value();
		else if (key === '--rules') args.rules = JSON.parse(value());
		else if (key === '--system-id') args.systemId = value();
		else if (key === '--password') args.password = value();
		else if (key === '--no-receipts') args.receipts = false;
		else if (key === '--no-record') args.record = false;
		else throw new Error('unknown argument ' + key);
	}
	return args;
}

const args = parseArgs(process.argv);
const idPrefix = Date.now().toString(36) + process.pid.toString(36);
let rules = args.rules;
let messages = [];
let tries = new Map(); // "prefix|number" -> submits seen, for rules with "times"
let counter = 0;
const stats = {
	binds: 0, unbinds: 0, submits: 0, accepted: 0, rejected: 0, receipts: 0, receiptAcks: 0,
	receiptNacks: 0, enquireLinks: 0, enquireLinkResps: 0, maxOutstanding: 0,
};
const sessions = new Set();

function ruleFor(destination) {
	return rules.find((rule) => destination.startsWith(rule.prefix)) || {};
}

function statusFor(rule, destination) {
	if (!rule.status) return 0;
	if (!rule.times) return rule.status;
	const key = rule.prefix + '|' + destination;
	const seen = (tries.get(key) || 0) + 1;
	tries.set(key, seen);
	return seen <= rule.times ? rule.status : 0;
}

function smppDate(date) {
	const pad = (n) => String(n).padStart(2, '0');
	return pad(date.getUTCFullYear() % 100) + pad(date.getUTCMonth() + 1) + pad(date.getUTCDate()) +
		pad(date.getUTCHours()) + pad(date.getUTCMinutes());
}

const MESSAGE_STATES = { DELIVRD: 2, EXPIRED: 3, DELETED: 4, UNDELIV: 5, ACCEPTD: 6, UNKNOWN: 7, REJECTD: 8 };

function sendReceipt(session, submit, messageId, rule, attempt) {
	const stat = rule.stat || 'DELIVRD';
	const now = smppDate(new Date());
	const text = 'id:' + messageId + ' sub:001 dlvrd:' + (stat === 'DELIVRD' ? '001' : '000') +
		' submit date:' + now + ' done date:' + now + ' stat:' + stat + ' err:000 text:';
	const options = {
		source_addr_ton: submit.dest_addr_ton,
		source_addr_npi: submit.dest_addr_npi,
		source_addr: submit.destination_addr,
		dest_addr_ton: submit.source_addr_ton,
		dest_addr_npi: submit.source_addr_npi,
		destination_addr: submit.source_addr,
		esm_class: 0x04,
		data_coding: 0,
		short_message: Buffer.from(text, 'ascii'),
	};
	if (rule.tlvs !== false) {
		options.receipted_message_id = messageId;
		options.message_state = MESSAGE_STATES[stat] || 7;
	}
	stats.receipts++;
	session.deliver_sm(options, (resp) => {
		if (resp.command_status === 0) {
			stats.receiptAcks++;
		} else {
			stats.receiptNacks++;
			if (attempt < 3) setTimeout(() => sendReceipt(session, submit, messageId, rule, attempt + 1), 50);
		}
	});
}

function onSubmit(session, pdu) {
	stats.submits++;
	// Submits this session is still waiting an answer for: shows the client's window.
	session.outstanding = (session.outstanding || 0) + 1;
	stats.maxOutstanding = Math.max(stats.maxOutstanding, session.outstanding);
	const destination = pdu.destination_addr;
	const rule = ruleFor(destination);
	const status = statusFor(rule, destination);
	if (status) {
		session.outstanding--;
		stats.rejected++;
		session.send(pdu.response({ command_status: status }));
		return;
	}
	const messageId = idPrefix + (++counter).toString(16).padStart(8, '0');
	const short = pdu.short_message || {};
	const udh = (short.udh || []);
	const udhBytes = Buffer.concat(udh);
	const record = {
		message_id: messageId,
		system_id: session.systemId,
		source_addr: pdu.source_addr,
		source_addr_ton: pdu.source_addr_ton,
		source_addr_npi: pdu.source_addr_npi,
		destination_addr: destination,
		dest_addr_ton: pdu.dest_addr_ton,
		dest_addr_npi: pdu.dest_addr_npi,
		esm_class: pdu.esm_class,
		data_coding: pdu.data_coding,
		registered_delivery: pdu.registered_delivery,
		udh: udh.length ? Buffer.concat([Buffer.from([udhBytes.length]), udhBytes]).toString('hex') : '',
		message: typeof short.message === 'string' ? short.message : Buffer.from(short.message || []).toString('hex'),
	};
	if (args.journal) fs.appendFileSync(args.journal, JSON.stringify(record) + '\n');
	if (args.record) messages.push(record);
	stats.accepted++;
	const answer = () => {
		session.outstanding--;
		session.send(pdu.response({ message_id: messageId }));
		if (args.receipts && (pdu.registered_delivery & 1) && rule.receipt !== false) {
			setTimeout(() => sendReceipt(session, pdu, messageId, rule, 1), rule.receipt_delay || 0);
		}
	};
	if (rule.delay) setTimeout(answer, rule.delay);
	else answer();
}

function onBind(session, pdu) {
	if ((args.systemId !== null && pdu.system_id !== args.systemId) ||
		(args.password !== null && pdu.password !== args.password)) {
		session.send(pdu.response({ command_status: smpp.ESME_RBINDFAIL }));
		session.close();
		return;
	}
	stats.binds++;
	session.systemId = pdu.system_id;
	session.send(pdu.response({ system_id: 'passpost-test-smsc' }));
}

const server = smpp.createServer((session) => {
	sessions.add(session);
	session.on('close', () => sessions.delete(session));
	session.on('error', () => sessions.delete(session));
	session.on('bind_transceiver', (pdu) => onBind(session, pdu));
	session.on('bind_transmitter', (pdu) => onBind(session, pdu));
	session.on('submit_sm', (pdu) => onSubmit(session, pdu));
	session.on('enquire_link', (pdu) => {
		stats.enquireLinks++;
		session.send(pdu.response());
	});
	session.on('unbind', (pdu) => {
		stats.unbinds++;
		session.send(pdu.response());
		session.close();
	});
});

function json(res, status, body) {
	res.writeHead(status, { 'content-type': 'application/json' });
	res.end(JSON.stringify(body));
}

const admin = http.createServer((req, res) => {
	let body = '';
	req.on('data', (chunk) => { body += chunk; });
	req.on('end', () => {
		if (req.method === 'GET' && req.url === '/messages') return json(res, 200, messages);
		if (req.method === 'GET' && req.url === '/stats') return json(res, 200, { ...stats, sessions: sessions.size });
		if (req.method === 'POST' && req.url === '/rules') {
			rules = JSON.parse(body || '[]');
			tries = new Map();
			return json(res, 200, rules);
		}
		if (req.method === 'POST' && req.url === '/reset') {
			messages = [];
			tries = new Map();
			for (const key of Object.keys(stats)) stats[key] = 0;
			return json(res, 200, {});
		}
		if (req.method === 'POST' && req.url === '/drop') {
			const dropped = sessions.size;
			for (const session of sessions) session.destroy();
			return json(res, 200, { dropped });
		}
		if (req.method === 'POST' && req.url === '/hang') {
			for (const session of sessions) session.pause();
			return json(res, 200, { hung: sessions.size });
		}
		if (req.method === 'POST' && req.url === '/enquire') {
			for (const session of sessions) {
				session.enquire_link({}, (resp) => { if (resp.command_status === 0) stats.enquireLinkResps++; });
			}
			return json(res, 200, { sessions: sessions.size });
		}
		return json(res, 404, { error: 'not found' });
	});
});

server.listen(args.port, '127.0.0.1', () => {
	admin.listen(args.adminPort, '127.0.0.1', () => {
		process.stdout.write(JSON.stringify({ smpp: server.address().port, admin: admin.address().port }) + '\n');
	});
});
