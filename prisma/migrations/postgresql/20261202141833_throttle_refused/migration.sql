-- AlterTable
ALTER TABLE "LoginThrottle" ADD COLUMN     "refused" INTEGER NOT NULL DEFAULT 0;
