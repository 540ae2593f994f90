/* SPDX-License-Identifier: MIT */
#pragma once

/* Forward declarations of the daemon's object types, so that a header
 * naming another module's type needs no include of that module. Each type
 * is defined in the header named after it. */

typedef struct Admin Admin;               /* admin/admin-private.h */
typedef struct Audit Audit;               /* admin/audit.c */
typedef struct Bus Bus;                   /* bus/bus-private.h */
typedef struct Connection Connection;     /* frontdesk/connection.h */
typedef struct ExpandResult ExpandResult; /* compile/expand.h */
typedef struct IoPool IoPool;             /* iopool.c */
typedef struct IoWork IoWork;             /* iopool.h */
typedef struct Job Job;                   /* compile/job.h */
typedef struct Listener Listener;         /* frontdesk/listener.c */
typedef struct Manager Manager;           /* manager.h */
typedef struct Pool Pool;                 /* compile/pool.h */
typedef struct ProvDb ProvDb;             /* provenance/provdb.c */
typedef struct ProvLookup ProvLookup;     /* provenance/provdb-query.c */
typedef struct Queue Queue;               /* compile/queue.c */
typedef struct Recorder Recorder;         /* provenance/recorder.c */
typedef struct Request Request;           /* compile/request.h */
typedef struct Spec Spec;                 /* frontdesk/spec.h */
typedef struct Worker Worker;             /* compile/worker.c */
typedef struct WorkerSlot WorkerSlot;     /* compile/pool.c */
